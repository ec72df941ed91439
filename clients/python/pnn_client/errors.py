"""Typed errors of the daemon API: every non-OK status becomes a PnnError whose `code` is the
status name from proto/pnn.proto (e.g. "LEASE_REQUIRED"), with the daemon's message and origin."""


class PnnError(Exception):
    """A call the daemon answered with an error status (or, for Unreachable, did not answer)."""

    def __init__(self, code, message, origin=""):
        super().__init__("%s: %s%s" % (code, message, " [%s]" % origin if origin else ""))
        self.code = code
        self.message = message
        self.origin = origin


class Unreachable(PnnError):
    """No reply within the timeout after every retry: pnnd is down or unreachable."""

    def __init__(self, message):
        super().__init__("UNREACHABLE", message)


class LeaseError(PnnError):
    """LEASE_REQUIRED, LEASE_HELD, LEASE_EXPIRED."""


class DeviceError(PnnError):
    """DEVICE_TIMEOUT, DEVICE_IO, DEVICE_FAULT, WRONG_STATE: the device could not do it."""


class InvalidRequest(PnnError):
    """The request itself is wrong: shapes, limits, non-finite values, bad arguments or config."""


class NotFound(PnnError):
    """UNKNOWN_DEVICE, UNKNOWN_JOB, UNKNOWN_RUN."""


class ProtocolError(PnnError):
    """UNSUPPORTED_PROTOCOL, MALFORMED, TOO_LARGE, or a reply that is not a valid message."""


_CLASSES = {
    "LEASE_REQUIRED": LeaseError, "LEASE_HELD": LeaseError, "LEASE_EXPIRED": LeaseError,
    "DEVICE_TIMEOUT": DeviceError, "DEVICE_IO": DeviceError, "DEVICE_FAULT": DeviceError,
    "WRONG_STATE": DeviceError,
    "SHAPE_MISMATCH": InvalidRequest, "NON_FINITE": InvalidRequest, "OUT_OF_LIMITS": InvalidRequest,
    "INVALID_ARGUMENT": InvalidRequest, "BATCH_TOO_LARGE": InvalidRequest,
    "PERMISSION_DENIED": InvalidRequest, "DEADLINE_EXCEEDED": InvalidRequest,
    "UNKNOWN_DEVICE": NotFound, "UNKNOWN_JOB": NotFound, "UNKNOWN_RUN": NotFound,
    "UNSUPPORTED_PROTOCOL": ProtocolError, "MALFORMED": ProtocolError, "TOO_LARGE": ProtocolError,
}


def error_for(code, message, origin=""):
    """The PnnError subclass instance for a status code name."""
    return _CLASSES.get(code, PnnError)(code, message, origin)
