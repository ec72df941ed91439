"""The messages of the golden frames (tests/data/frames/*.hex), as the Python side builds them.
tests/firmware_iface/golden_frames_test.cpp builds the same messages with the C++ codec; both
must encode to the bytes of the files, and decode them back to these fields.
Regenerate (only when the protocol changes on purpose): /usr/bin/python3 tests/data/frames/golden.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python"))
from pnn_device.frames import MSG, encode_message  # noqa: E402

DESCRIPTION = dict(protocol_minor=1, kind="tanh-mixer", num_inputs=4, num_outputs=3,
                   num_params=15, max_batch=64, input_unit="V", input_min=-1.0, input_max=1.0,
                   output_unit="1", output_noise_std=0.01,
                   blocks=[dict(name="W", unit="1", description="mixing weights", count=12,
                                min=-2.0, max=2.0),
                           dict(name="b", unit="V", description="offsets", count=3, min=-0.5,
                                max=0.5)])

# name: (type, seq, fields)
GOLDEN = {
    "identify": (MSG.IDENTIFY, 1, {}),
    "identify_reply": (MSG.IDENTIFY_REPLY, 1, dict(serial="TANH-MIX-01", model="tanh mixer",
                                                   firmware_version="demo-1.0")),
    "describe": (MSG.DESCRIBE, 2, {}),
    "describe_reply": (MSG.DESCRIBE_REPLY, 2, DESCRIPTION),
    "capabilities_reply": (MSG.CAPABILITIES_REPLY, 3, dict(
        num_inputs=4, num_outputs=3, num_params=15, max_batch=64,
        blocks=[dict(name="W", count=12, min=-2.0, max=2.0),
                dict(name="b", count=3, min=-0.5, max=0.5)])),
    "set_parameters": (MSG.SET_PARAMETERS, 4, dict(theta=[0.5, -0.25, 1.0])),
    "load_input_batch": (MSG.LOAD_INPUT_BATCH, 5, dict(rows=2, cols=2, data=[0.1, -0.2, 0.3, 1.0])),
    "ack": (MSG.ACK, 5, dict(command=MSG.LOAD_INPUT_BATCH)),
    "run": (MSG.RUN, 6, {}),
    "outputs_reply": (MSG.OUTPUTS_REPLY, 7, dict(rows=1, cols=3, data=[0.25, -0.5, 0.75])),
    "status_reply": (MSG.STATUS_REPLY, 8, dict(state=3, health=0, error_code=0, commands_ok=7,
                                               commands_failed=1, frames_rejected=2,
                                               runs_completed=1)),
    "error_reply": (MSG.ERROR_REPLY, 9, dict(code=3, message="parameter W[2] = 5 outside [-2, 2]: refused")),
}


def hex_of(name):
    t, seq, fields = GOLDEN[name]
    return encode_message(t, seq, **fields).hex()


if __name__ == "__main__":
    for name in GOLDEN:
        with open(os.path.join(HERE, name + ".hex"), "w") as f:
            f.write(hex_of(name) + "\n")
    print("wrote %d golden frames to %s" % (len(GOLDEN), HERE))
