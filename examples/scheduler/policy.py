#!/usr/bin/env python3
"""A scheduling policy in Python, served on the zube bus.

zube-scheduler's RemotePolicy plugin (docs/scheduler.md) calls the service
"scheduler.policy/<name>" once per scheduling cycle: method "filter" with
every node, method "score" with the feasible ones (zube.PolicyRequest of
schemas/scheduler.proto). This process serves that service with pyzmq and
the Python code protoc generates from zube's schemas:

    python3 policy.py --broker tcp://127.0.0.1:7400 --name odd-nodes

and a profile enables it:

    pluginConfig:
    - name: RemotePolicy
      args: {policy: odd-nodes}

The policy here is a toy a researcher replaces: nodes whose name ends in an
odd digit fit, and the emptiest of them (by requested CPU) scores best.
Needs python3-zmq, python3-protobuf and protoc (protobuf-compiler); the
modules are generated into a temporary folder at start. Insecure buses
only (a CurveZMQ bus needs zmq's curve keys from the certificate folder).
"""
import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "schemas")


def load_schemas(schemas):
    """protoc --python_out for the schemas this needs; returns the modules."""
    out = tempfile.mkdtemp(prefix="zube-policy-")
    atexit.register(shutil.rmtree, out, True)
    protos = ["bus.proto", "meta.proto", "core.proto", "scheduler.proto"]
    subprocess.run(["protoc", "--proto_path", schemas, "--python_out", out] + protos,
                   check=True)
    sys.path.insert(0, out)
    import bus_pb2
    import scheduler_pb2
    return bus_pb2, scheduler_pb2


def policy_filter(request, scheduler_pb2):
    reply = scheduler_pb2.PolicyFilterReply()
    for node in request.nodes:
        fits = node.name[-1:] in "13579"
        reply.feasible.append(fits)
        reply.reasons.append("" if fits else "node(s) are even (python policy)")
    return reply


def policy_score(request, scheduler_pb2):
    reply = scheduler_pb2.PolicyScoreReply()
    for node in request.nodes:
        free = 1.0
        if node.allocatable_milli_cpu > 0:
            free = 1.0 - node.requested_milli_cpu / node.allocatable_milli_cpu
        reply.scores.append(max(0, min(100, int(free * 100))))
    return reply


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="tcp://127.0.0.1:7400")
    parser.add_argument("--name", default="odd-nodes")
    parser.add_argument("--schemas", default=SCHEMAS)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    args = parser.parse_args()
    # SIGTERM ends it as Ctrl-C does, so the generated modules are removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    bus_pb2, scheduler_pb2 = load_schemas(args.schemas)
    service = "scheduler.policy/" + args.name
    instance = "policy.py.%d" % os.getpid()

    def header(kind, **fields):
        return bus_pb2.BusHeader(version=bus_pb2.BUS_VERSION_1, kind=kind, **fields)

    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(args.broker)
    ready = header(bus_pb2.BUS_READY, service=service, instance=instance,
                   heartbeat_ms=args.heartbeat_ms)
    socket.send_multipart([ready.SerializeToString()])
    epoch = None
    last_sent = time.monotonic()
    print("serving %s at %s" % (service, args.broker), flush=True)
    while True:
        if socket.poll(args.heartbeat_ms // 2):
            frames = socket.recv_multipart()
            got = bus_pb2.BusHeader.FromString(frames[0])
            if got.kind == bus_pb2.BUS_HEARTBEAT:
                # A new epoch: the broker restarted; register again
                if epoch is not None and got.instance != epoch:
                    socket.send_multipart([ready.SerializeToString()])
                epoch = got.instance
            elif got.kind == bus_pb2.BUS_DISCONNECT:
                socket.send_multipart([ready.SerializeToString()])
            elif got.kind == bus_pb2.BUS_REQUEST:
                reply = header(bus_pb2.BUS_REPLY, correlation_id=got.correlation_id,
                               route=got.route, status=bus_pb2.STATUS_OK)
                try:
                    request = scheduler_pb2.PolicyRequest.FromString(frames[1])
                    if got.method == "filter":
                        payload = policy_filter(request, scheduler_pb2)
                    elif got.method == "score":
                        payload = policy_score(request, scheduler_pb2)
                    else:
                        raise ValueError("unknown method %r" % got.method)
                    body = payload.SerializeToString()
                except Exception as error:  # a bad request must not stop us
                    reply.status = bus_pb2.STATUS_BAD_REQUEST
                    reply.error = "%s: %s" % (service, error)
                    body = b""
                socket.send_multipart([reply.SerializeToString(), body])
                last_sent = time.monotonic()
        if time.monotonic() - last_sent >= args.heartbeat_ms / 1000.0:
            beat = header(bus_pb2.BUS_HEARTBEAT, heartbeat_ms=args.heartbeat_ms,
                          instance=instance)
            socket.send_multipart([beat.SerializeToString()])
            last_sent = time.monotonic()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
