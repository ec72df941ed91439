#!/usr/bin/python3
"""PyVISA (pyvisa-py backend) against pnn-siminst: the simulated SCPI instrument of the electronic
setup, served on a free local port, must work with an ordinary VISA client as a real LXI
instrument's scpi-raw socket does.

    /usr/bin/python3 pyvisa_siminst_test.py PATH/TO/pnn-siminst

Starts the server, opens TCPIP::127.0.0.1::PORT::SOCKET, checks *IDN?, sets and queries a
parameter, uploads a waveform as a binary block and reads the digitized trace back as one, sends
a bad command and reads the error with SYST:ERR?, then stops the server with SIGTERM and checks
that it exits 0. Exits non-zero with a message on any failure.
"""
import re
import select
import signal
import subprocess
import sys

TIMEOUT_S = 10.0


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def start_server(exe):
    proc = subprocess.Popen(
        [exe, "--listen", "127.0.0.1:0", "sim://electronic-circuit?seed=1&slots=32"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
    if not ready:
        proc.kill()
        fail("pnn-siminst printed nothing within %.0f s" % TIMEOUT_S)
    line = proc.stdout.readline()
    match = re.match(r"listening on 127\.0\.0\.1:(\d+) ", line)
    if not match:
        proc.kill()
        fail("unexpected first line from pnn-siminst: %r (stderr: %r)" % (line, proc.stderr.read()))
    return proc, int(match.group(1))


def exercise(pyvisa, port):
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource("TCPIP::127.0.0.1::%d::SOCKET" % port, read_termination="\n",
                            write_termination="\n", timeout=int(TIMEOUT_S * 1000))
    try:
        idn = inst.query("*IDN?").strip().split(",")
        check(idn == ["PNN-HIL", "AWGDIG-100", "SIM-RLC-1", "1.0-sim"], "*IDN? gave %r" % idn)

        inst.write("SOUR:FUNC:ARB:SRAT 250000")
        rate = float(inst.query("SOUR:FUNC:ARB:SRAT?"))
        check(rate == 250000.0, "SOUR:FUNC:ARB:SRAT? gave %r after setting 250000" % rate)
        inst.write("SOUR:FUNC:ARB:SRAT 1e6")

        # Eight 1 µs points at +5 V (DAC code 16384), big-endian int16 (FORMat:BORDer NORMal).
        inst.write_binary_values("SOUR:DATA:ARB:DAC PYWAVE,", [16384] * 8, datatype="h",
                                 is_big_endian=True)
        inst.write("SOUR:FUNC:ARB PYWAVE;:OUTP ON;:WAV:FORM REAL;:INIT")
        check(inst.query("*OPC?").strip() == "1", "*OPC? after INIT")
        trace = inst.query_binary_values("WAV:DATA?", datatype="f", is_big_endian=True,
                                         container=list)
        check(len(trace) == 8, "WAV:DATA? gave %d samples, expected 8" % len(trace))
        check(0.0 < trace[0] < trace[-1] < 5.0,
              "the capacitor should charge towards the 5 V drive: %r" % trace)
        inst.write("OUTP OFF")
        check(inst.query("OUTP?").strip() == "0", "OUTP? after OUTP OFF")

        inst.write("SOUR:FROBnicate 1")
        error = inst.query("SYST:ERR?").strip()
        check(error == '-113,"Undefined header"', "SYST:ERR? after a bad command gave %r" % error)
        inst.write("SOUR:VOLT:LIM:HIGH 11")
        error = inst.query("SYST:ERR?").strip()
        check(error.startswith('-222,"Data out of range'), "SYST:ERR? after 11 V gave %r" % error)
        error = inst.query("SYST:ERR?").strip()
        check(error == '0,"No error"', "the error queue should be empty now: %r" % error)
    finally:
        inst.close()
        rm.close()


def main():
    if len(sys.argv) != 2:
        fail("usage: pyvisa_siminst_test.py PATH/TO/pnn-siminst")
    try:
        import pyvisa  # noqa: F401 (imported here so a missing package gets a clear message)
        import pyvisa_py  # noqa: F401
    except ImportError as e:
        fail("%s: install python3-pyvisa and python3-pyvisa-py (bash scripts/setup.sh --test)" % e)
    proc, port = start_server(sys.argv[1])
    try:
        exercise(pyvisa, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("pnn-siminst did not stop within %.0f s of SIGTERM" % TIMEOUT_S)
    check(code == 0, "pnn-siminst exited with %d after SIGTERM, expected 0" % code)
    print("ok: PyVISA talked to pnn-siminst on port %d" % port)


if __name__ == "__main__":
    main()
