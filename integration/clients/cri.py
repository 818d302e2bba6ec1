"""A minimal CRI client (what the kubelet does), to drive containerd's CRI plugin, where a
Kubernetes RuntimeClass's `handler` names a `runtimes.<handler>` entry of containerd's
config.toml (for husk: runtime_type io.containerd.runc.v2 with options.BinaryName).

gRPC over HTTP/2 over the unix socket, with hand-encoded protobuf: no CRI client ships in
Debian (crictl is not packaged), and the harness uses the standard library only. Only what
the scenario needs: unary calls, messages with strings, varints and nested messages.
The CRI plugin itself (containerd) is real; this plays the kubelet's part."""

import socket
import struct

# ---- protobuf --------------------------------------------------------------------------------


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb(*fields):
    """Encodes (number, value) pairs: str/bytes -> length-delimited, int -> varint,
    list -> repeated, tuple -> nested message, dict -> map<string,string>."""
    out = bytearray()
    for num, val in fields:
        if val is None:
            continue
        if isinstance(val, list):
            for v in val:
                out += pb((num, v))
        elif isinstance(val, dict):
            for k, v in val.items():
                out += pb((num, ((1, k), (2, v))))
        elif isinstance(val, bool) or isinstance(val, int):
            out += _varint(num << 3) + _varint(int(val))
        else:
            if isinstance(val, tuple):
                val = pb(*val)
            elif isinstance(val, str):
                val = val.encode()
            out += _varint((num << 3) | 2) + _varint(len(val)) + val
    return bytes(out)


def pb_decode(data):
    """{field number: [values]}: varints as int, length-delimited as bytes."""
    res, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wt}")
        res.setdefault(num, []).append(v)
    return res


def _read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# ---- gRPC over HTTP/2 -------------------------------------------------------------------------

class GrpcError(Exception):
    pass


def _hpack_str(s):
    b = s.encode()
    assert len(b) < 127
    return bytes([len(b)]) + b


def _frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def call(sock_path, method, request, timeout=60):
    """One unary gRPC call; returns the response message bytes. A call without a response
    message (an error status) raises GrpcError; the server's log has the message."""
    headers = (b"\x83"  # :method POST (static index 3)
               + b"\x86"  # :scheme http (static index 6)
               + b"\x04" + _hpack_str(method)  # :path, literal, indexed name 4
               + b"\x01" + _hpack_str("localhost")  # :authority, indexed name 1
               + b"\x0f\x10" + _hpack_str("application/grpc")  # content-type (index 31)
               + b"\x00" + _hpack_str("te") + _hpack_str("trailers"))
    body = b"\x00" + struct.pack(">I", len(request)) + request
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"")
                  + _frame(1, 0x4, 1, headers) + _frame(0, 0x1, 1, body))
        data, buf, done = b"", b"", False
        while not done:
            while len(buf) < 9:
                chunk = s.recv(65536)
                if not chunk:
                    raise GrpcError(f"{method}: connection closed")
                buf += chunk
            n = int.from_bytes(buf[:3], "big")
            ftype, flags = buf[3], buf[4]
            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            while len(buf) < 9 + n:
                chunk = s.recv(65536)
                if not chunk:
                    raise GrpcError(f"{method}: connection closed")
                buf += chunk
            payload, buf = buf[9:9 + n], buf[9 + n:]
            if ftype == 4 and not flags & 1:  # SETTINGS: acknowledge
                s.sendall(_frame(4, 1, 0, b""))
            elif ftype == 6 and not flags & 1:  # PING: answer
                s.sendall(_frame(6, 1, 0, payload))
            elif ftype == 7:  # GOAWAY
                raise GrpcError(f"{method}: GOAWAY")
            elif stream == 1:
                if ftype == 0:
                    data += payload
                    if n:
                        s.sendall(_frame(8, 0, 0, struct.pack(">I", n))
                                  + _frame(8, 0, 1, struct.pack(">I", n)))
                elif ftype == 3:
                    raise GrpcError(f"{method}: stream reset")
                done = bool(flags & 1)
    finally:
        s.close()
    if len(data) < 5:
        raise GrpcError(f"{method} failed (no response message)")
    return data[5:5 + int.from_bytes(data[1:5], "big")]


RUNTIME = "/runtime.v1.RuntimeService/"


class Cri:
    def __init__(self, sock):
        self.sock = sock

    def run_pod(self, name, uid, log_dir, handler, cgroup_parent):
        meta = ((1, name), (2, uid), (3, "default"), (4, 0))
        # Network, pid and ipc of the node (NODE = 2): no CNI plugin needed.
        linux = ((1, cgroup_parent), (2, ((1, ((1, 2),)),)))
        self.pod_config = ((1, meta), (3, log_dir), (8, linux))
        r = pb_decode(call(self.sock, RUNTIME + "RunPodSandbox",
                           pb((1, self.pod_config), (2, handler))))
        return r[1][0].decode()

    def create_container(self, pod_id, name, image, command, log_path):
        cfg = ((1, ((1, name), (2, 0))), (2, ((1, image),)), (3, command), (11, log_path))
        r = pb_decode(call(self.sock, RUNTIME + "CreateContainer",
                           pb((1, pod_id), (2, cfg), (3, self.pod_config))))
        return r[1][0].decode()

    def start_container(self, cid):
        call(self.sock, RUNTIME + "StartContainer", pb((1, cid)))

    def container_state(self, cid):
        """(state, exit_code): state 0 created, 1 running, 2 exited, 3 unknown."""
        r = pb_decode(call(self.sock, RUNTIME + "ContainerStatus", pb((1, cid))))
        st = pb_decode(r[1][0])
        return st.get(3, [0])[0], st.get(7, [0])[0]

    def stop_pod(self, pod_id):
        call(self.sock, RUNTIME + "StopPodSandbox", pb((1, pod_id)))

    def remove_pod(self, pod_id):
        call(self.sock, RUNTIME + "RemovePodSandbox", pb((1, pod_id)))
