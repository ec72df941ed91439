"""Typed errors of the daemon API: every non-OK status becomes a PnnError whose `code` is the
status name from proto/pnn.proto (e.g. "LEASE_REQUIRED"), with the daemon's message and origin.

The class says what kind of problem it is (catch `LeaseError` for every lease problem); the code
says exactly which. A status code this client does not know (a newer daemon) becomes a plain
PnnError whose code is "STATUS_<number>". `reply` is the whole pb.Reply when the daemon answered
(None for Unreachable and for replies that could not be parsed): some errors carry a body, e.g.
JOB_FINISHED carries the job's final JobInfo (also in JobFinished.job)."""


class PnnError(Exception):
    """A call the daemon answered with an error status (or, for Unreachable, did not answer)."""

    def __init__(self, code, message, origin="", reply=None):
        super().__init__("%s: %s%s" % (code, message, " [%s]" % origin if origin else ""))
        self.code = code
        self.message = message
        self.origin = origin
        self.reply = reply


class Unreachable(PnnError):
    """No reply within the timeout after every retry: pnnd is down or unreachable."""

    def __init__(self, message):
        super().__init__("UNREACHABLE", message)


class LeaseError(PnnError):
    """LEASE_REQUIRED, LEASE_HELD, LEASE_EXPIRED, LEASE_RELEASED."""


class LeaseReleased(LeaseError):
    """LEASE_RELEASED: the token was released by its holder (not expired): acquire again."""


class DeviceError(PnnError):
    """DEVICE_TIMEOUT, DEVICE_IO, DEVICE_FAULT, WRONG_STATE: the device could not do it."""


class InvalidRequest(PnnError):
    """The request itself is wrong: shapes, limits, non-finite values, bad arguments or config."""


class NotFound(PnnError):
    """UNKNOWN_DEVICE, UNKNOWN_JOB, UNKNOWN_RUN."""


class ProtocolError(PnnError):
    """UNSUPPORTED_PROTOCOL, MALFORMED, TOO_LARGE, or a reply that is not a valid message."""


class StoreError(PnnError):
    """RECORD_FAILED, STORE_FULL: the daemon's run store could not take the forward record."""


class RecordFailed(StoreError):
    """RECORD_FAILED (store.forward_records: sync): the device RAN, but its record could not be
    committed, so the call is not acknowledged and y is not returned. Do not assume the hardware
    state is unchanged; retrying with the same request id does not run it again."""


class StoreFull(StoreError):
    """STORE_FULL: the run store is known to be full; refused before the device ran (free disk
    space or lower store.forward_records_max_bytes, then retry)."""


class JobFinished(PnnError):
    """JOB_FINISHED: CancelJob of a job that had already ended; nothing was cancelled. `job` is
    the job's final pb.JobInfo (state SUCCEEDED, FAILED, CANCELLED or ABORTED) when the daemon
    sent it, else None."""

    @property
    def job(self):
        reply = self.reply
        if reply is not None and reply.HasField("cancel_job"):
            return reply.cancel_job.job
        return None


class Busy(PnnError):
    """BUSY (protocol minor 5): too much of this client's work was already waiting for pnnd's
    compute pool (pipelined twin or run-store requests); nothing was run. A client with no
    request waiting is always admitted, so one-at-a-time callers never see it: wait for earlier
    replies, then retry."""


_CLASSES = {
    "LEASE_REQUIRED": LeaseError, "LEASE_HELD": LeaseError, "LEASE_EXPIRED": LeaseError,
    "LEASE_RELEASED": LeaseReleased,
    "DEVICE_TIMEOUT": DeviceError, "DEVICE_IO": DeviceError, "DEVICE_FAULT": DeviceError,
    "WRONG_STATE": DeviceError,
    "SHAPE_MISMATCH": InvalidRequest, "NON_FINITE": InvalidRequest, "OUT_OF_LIMITS": InvalidRequest,
    "INVALID_ARGUMENT": InvalidRequest, "BATCH_TOO_LARGE": InvalidRequest,
    "PERMISSION_DENIED": InvalidRequest, "DEADLINE_EXCEEDED": InvalidRequest,
    "UNKNOWN_DEVICE": NotFound, "UNKNOWN_JOB": NotFound, "UNKNOWN_RUN": NotFound,
    "UNKNOWN_TWIN": NotFound, "TWIN_MISMATCH": InvalidRequest,
    "UNSUPPORTED_PROTOCOL": ProtocolError, "MALFORMED": ProtocolError, "TOO_LARGE": ProtocolError,
    "RECORD_FAILED": RecordFailed, "STORE_FULL": StoreFull,
    "JOB_FINISHED": JobFinished, "BUSY": Busy,
}


def error_for(code, message, origin="", reply=None):
    """The PnnError subclass instance for a status code name."""
    return _CLASSES.get(code, PnnError)(code, message, origin, reply)
