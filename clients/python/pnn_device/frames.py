"""The binary frame protocol, version 1.1 (docs/protocol.md sections 1 and 2), board side.

Pure: bytes in, messages out, and the other way; no I/O. Mirrors firmware_iface's frame.cpp and
messages.cpp: the same layout, the same strict decoders (trailing bytes, counts larger than the
bytes present, enums out of range and bools other than 0/1 are refused), the same fault classes
in `FrameDecoder.stats`. Messages are (type, fields) pairs: `encode_message(MSG.IDENTIFY_REPLY,
seq, serial="SN-1", model="m", firmware_version="1.0")`.
"""
import math
import struct

SYNC = b"\xA5\x5A"
VERSION = 1          # the frame version byte
PROTOCOL_MINOR = 1   # 1.1: describe; carried by describe_reply
HEADER_SIZE = 20
TRAILER_SIZE = 4
DEFAULT_MAX_PAYLOAD = 1 << 20
MAX_STRING = 0xFFFF


class MSG:
    IDENTIFY = 0x01
    GET_CAPABILITIES = 0x02
    SET_PARAMETERS = 0x03
    LOAD_INPUT_BATCH = 0x04
    RUN = 0x05
    READ_OUTPUTS = 0x06
    GET_STATUS = 0x07
    ABORT = 0x08
    SELF_TEST = 0x09
    DESCRIBE = 0x0A
    IDENTIFY_REPLY = 0x81
    CAPABILITIES_REPLY = 0x82
    OUTPUTS_REPLY = 0x86
    STATUS_REPLY = 0x87
    SELF_TEST_REPLY = 0x89
    DESCRIBE_REPLY = 0x8A
    ACK = 0xFE
    ERROR_REPLY = 0xFF


KNOWN_TYPES = {v for k, v in vars(MSG).items() if k.isupper()}
COMMANDS = {t for t in KNOWN_TYPES if t < 0x80}


class DeviceError:
    """error_reply codes of protocol v1."""
    MALFORMED = 1
    SHAPE = 2
    OUT_OF_LIMITS = 3
    NON_FINITE = 4
    NOT_LOADED = 5
    NO_OUTPUTS = 6
    BUSY = 7
    UNSUPPORTED = 8
    HARDWARE = 9


class State:
    IDLE, LOADED, RUNNING, OUTPUTS_READY, FAULT = range(5)


class DecodeError(ValueError):
    """A payload that does not decode: kind is 'truncated', 'trailing_bytes', 'bad_value' or
    'inconsistent' or 'unknown_message_type' (firmware_iface's Errc)."""

    def __init__(self, kind, text=""):
        super().__init__("%s%s" % (kind, ": " + text if text else ""))
        self.kind = kind


# --- CRC-32C (Castagnoli, reflected 0x82F63B78) ------------------------------------------------

def _table():
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return out


_CRC_TABLE = _table()


def crc32c(data, crc=0):
    """CRC-32C of data; crc continues a previous value (crc32c_extend)."""
    t = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# --- frames ------------------------------------------------------------------------------------

def encode_frame(msg_type, seq, payload=b"", flags=0):
    head = SYNC + struct.pack("<BBB3xII", VERSION, msg_type, flags, seq, len(payload))
    hcrc = crc32c(head)
    head += struct.pack("<I", hcrc)
    return head + payload + struct.pack("<I", crc32c(payload, hcrc))


class Frame:
    __slots__ = ("type", "flags", "seq", "payload")

    def __init__(self, msg_type, flags, seq, payload):
        self.type, self.flags, self.seq, self.payload = msg_type, flags, seq, payload


class FrameDecoder:
    """Stream decoder with firmware_iface's recovery rule: a candidate that fails any check costs
    one byte, then the hunt for the next sync goes on. stats counts each fault class."""

    def __init__(self, max_payload=DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.stats = dict(frames=0, garbage_bytes=0, bad_header=0, oversize=0, crc_mismatch=0,
                          unsupported_version=0, truncated=0)

    def errors(self):
        s = self.stats
        return (s["bad_header"] + s["oversize"] + s["crc_mismatch"] + s["unsupported_version"] +
                s["truncated"])

    def feed(self, data):
        self.buf += data

    def flush(self):
        if self.buf:
            self.stats["truncated"] += 1
        self.buf = bytearray()

    def _skip(self, n):
        del self.buf[:n]
        self.stats["garbage_bytes"] += n

    def next(self):
        """The next checked frame, or None when more bytes are needed."""
        buf = self.buf
        while buf:
            if buf[0] != 0xA5:
                at = buf.find(b"\xA5")
                self._skip(len(buf) if at < 0 else at)
                continue
            if len(buf) < 2:
                return None
            if buf[1] != 0x5A:
                self._skip(1)
                continue
            if len(buf) < HEADER_SIZE:
                return None
            version, msg_type, flags = buf[2], buf[3], buf[4]
            seq, size, hcrc = struct.unpack_from("<III", buf, 8)
            fault = None
            if crc32c(buf[:16]) != hcrc:
                fault = "bad_header"
            elif version != VERSION:
                fault = "unsupported_version"
            elif buf[5] or buf[6] or buf[7]:
                fault = "bad_header"
            elif size > self.max_payload:
                fault = "oversize"
            if fault:
                self.stats[fault] += 1
                self._skip(1)
                continue
            need = HEADER_SIZE + size + TRAILER_SIZE
            if len(buf) < need:
                return None
            payload = bytes(buf[HEADER_SIZE:HEADER_SIZE + size])
            (fcrc,) = struct.unpack_from("<I", buf, HEADER_SIZE + size)
            if crc32c(payload, hcrc) != fcrc:
                self.stats["crc_mismatch"] += 1
                self._skip(1)
                continue
            del buf[:need]
            self.stats["frames"] += 1
            return Frame(msg_type, flags, seq, payload)
        return None


# --- payloads ----------------------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data, self.pos = memoryview(data), 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise DecodeError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))

    def u8(self):
        return self.unpack("B")[0]

    def u32(self):
        return self.unpack("I")[0]

    def f64(self):
        return self.unpack("d")[0]

    def string(self):
        (n,) = self.unpack("H")
        return bytes(self.take(n)).decode("utf-8", "replace")

    def f64_array(self, n):
        if n > (len(self.data) - self.pos) // 8:
            raise DecodeError("truncated")
        return list(struct.unpack("<%dd" % n, self.take(8 * n)))

    def end(self):
        if self.pos != len(self.data):
            raise DecodeError("trailing_bytes")


class Writer:
    def __init__(self):
        self.parts = []

    def pack(self, fmt, *values):
        self.parts.append(struct.pack("<" + fmt, *values))

    def string(self, s, field="string"):
        b = s.encode("utf-8")
        if len(b) > MAX_STRING:
            raise ValueError("%s: %d bytes exceeds the wire limit of 65535" % (field, len(b)))
        self.pack("H", len(b))
        self.parts.append(b)

    def batch(self, rows, cols, data):
        data = [float(v) for v in data]
        if rows * cols != len(data):
            raise ValueError("rows*cols = %d*%d but data has %d values" % (rows, cols, len(data)))
        self.pack("II", rows, cols)
        self.parts.append(struct.pack("<%dd" % len(data), *data))

    def bytes(self):
        return b"".join(self.parts)


def encode_payload(msg_type, **f):
    """The payload of a message of msg_type with fields f (the names of docs/protocol.md)."""
    w = Writer()
    t = msg_type
    if t in (MSG.IDENTIFY, MSG.GET_CAPABILITIES, MSG.RUN, MSG.READ_OUTPUTS, MSG.GET_STATUS,
             MSG.ABORT, MSG.SELF_TEST, MSG.DESCRIBE):
        pass
    elif t == MSG.IDENTIFY_REPLY:
        for k in ("serial", "model", "firmware_version"):
            w.string(f[k], k)
    elif t == MSG.CAPABILITIES_REPLY:
        w.pack("IIIII", f["num_inputs"], f["num_outputs"], f["num_params"], f["max_batch"],
               len(f["blocks"]))
        for b in f["blocks"]:
            w.string(b["name"], "name")
            w.pack("Idd", b["count"], b["min"], b["max"])
    elif t == MSG.SET_PARAMETERS:
        theta = [float(v) for v in f["theta"]]
        w.pack("I%dd" % len(theta), len(theta), *theta)
    elif t in (MSG.LOAD_INPUT_BATCH, MSG.OUTPUTS_REPLY):
        w.batch(f["rows"], f["cols"], f["data"])
    elif t == MSG.STATUS_REPLY:
        w.pack("BBiQQQQ", f["state"], f["health"], f["error_code"], f["commands_ok"],
               f["commands_failed"], f["frames_rejected"], f["runs_completed"])
    elif t == MSG.SELF_TEST_REPLY:
        w.pack("B", 1 if f["passed"] else 0)
        w.string(f["text"], "text")
    elif t == MSG.DESCRIBE_REPLY:
        w.pack("B", f.get("protocol_minor", PROTOCOL_MINOR))
        w.string(f["kind"], "kind")
        w.pack("IIII", f["num_inputs"], f["num_outputs"], f["num_params"], f["max_batch"])
        w.string(f["input_unit"], "input_unit")
        w.pack("dd", f["input_min"], f["input_max"])
        w.string(f["output_unit"], "output_unit")
        w.pack("dI", f["output_noise_std"], len(f["blocks"]))
        for b in f["blocks"]:
            w.string(b["name"], "name")
            w.string(b["unit"], "unit")
            w.string(b.get("description", ""), "description")
            w.pack("Idd", b["count"], b["min"], b["max"])
    elif t == MSG.ACK:
        w.pack("B", f["command"])
    elif t == MSG.ERROR_REPLY:
        w.pack("i", f["code"])
        w.string(f["message"], "message")
    else:
        raise ValueError("unknown message type 0x%02X" % t)
    return w.bytes()


def encode_message(msg_type, seq, **fields):
    return encode_frame(msg_type, seq, encode_payload(msg_type, **fields))


def decode_payload(msg_type, payload):
    """The fields of a payload (a dict); raises DecodeError like firmware_iface's decoders."""
    r = Reader(payload)
    t = msg_type
    f = {}
    if t in (MSG.IDENTIFY, MSG.GET_CAPABILITIES, MSG.RUN, MSG.READ_OUTPUTS, MSG.GET_STATUS,
             MSG.ABORT, MSG.SELF_TEST, MSG.DESCRIBE):
        pass
    elif t == MSG.SET_PARAMETERS:
        f["theta"] = r.f64_array(r.u32())
    elif t in (MSG.LOAD_INPUT_BATCH, MSG.OUTPUTS_REPLY):
        rows, cols = r.unpack("II")
        f.update(rows=rows, cols=cols, data=r.f64_array(rows * cols))
    elif t == MSG.IDENTIFY_REPLY:
        f.update(serial=r.string(), model=r.string(), firmware_version=r.string())
    elif t == MSG.ACK:
        f["command"] = r.u8()
        r.end()
        if f["command"] not in KNOWN_TYPES:
            raise DecodeError("bad_value", "ack of an unknown type")
    elif t == MSG.ERROR_REPLY:
        (f["code"],) = r.unpack("i")
        f["message"] = r.string()
    elif t == MSG.DESCRIBE_REPLY:
        f["protocol_minor"] = r.u8()
        f["kind"] = r.string()
        (f["num_inputs"], f["num_outputs"], f["num_params"], f["max_batch"]) = r.unpack("IIII")
        f["input_unit"] = r.string()
        f["input_min"], f["input_max"] = r.unpack("dd")
        f["output_unit"] = r.string()
        f["output_noise_std"], n = r.unpack("dI")
        f["blocks"] = []
        for _ in range(n):
            b = dict(name=r.string(), unit=r.string(), description=r.string())
            b["count"], b["min"], b["max"] = r.unpack("Idd")
            f["blocks"].append(b)
    elif t == MSG.CAPABILITIES_REPLY:
        (f["num_inputs"], f["num_outputs"], f["num_params"], f["max_batch"], n) = r.unpack("IIIII")
        f["blocks"] = []
        for _ in range(n):
            b = dict(name=r.string())
            b["count"], b["min"], b["max"] = r.unpack("Idd")
            if not b["min"] <= b["max"]:
                raise DecodeError("bad_value", "block min > max or NaN")
            f["blocks"].append(b)
        r.end()
        if sum(b["count"] for b in f["blocks"]) != f["num_params"]:
            raise DecodeError("inconsistent", "block counts do not add up to num_params")
    elif t == MSG.STATUS_REPLY:
        (f["state"], f["health"], f["error_code"], f["commands_ok"], f["commands_failed"],
         f["frames_rejected"], f["runs_completed"]) = r.unpack("BBiQQQQ")
        r.end()
        if f["state"] > State.FAULT or f["health"] > 2:
            raise DecodeError("bad_value", "state or health out of range")
    elif t == MSG.SELF_TEST_REPLY:
        passed = r.u8()
        f["text"] = r.string()
        r.end()
        if passed > 1:
            raise DecodeError("bad_value", "passed is not 0 or 1")
        f["passed"] = passed == 1
    else:
        raise DecodeError("unknown_message_type", "0x%02X" % t)
    r.end()
    return f


def finite(values):
    return all(math.isfinite(v) for v in values)
