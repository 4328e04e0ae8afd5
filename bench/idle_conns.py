#!/usr/bin/python3
"""Memory per idle keep-alive connection of one server worker.

    idle_conns.py HOST PORT WORKER_PID N [PATH]

Reads the worker's VmRSS, opens N connections, sends one request on each and
reads its response (so each connection is a served, keep-alive idle one, not a
fresh accept), waits a moment, reads VmRSS again, then closes everything.
Prints one line:  opened=N idle=M before_kib=B after_kib=A
(`idle` counts the connections the server still held open at the second
reading; a server that closes idle connections early shows it there.)
"""
import asyncio
import resource
import sys

BATCH = 250           # connects in flight at once: stay under listen backlogs
SETTLE_SECONDS = 2.0  # let the server finish its per-connection work


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def one_request(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if status != b"200" or length is None:
        raise RuntimeError(f"unexpected response: {head[:200]!r}")
    await reader.readexactly(length)
    return reader, writer


async def main():
    host, port, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    path = sys.argv[5] if len(sys.argv) > 5 else "/"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 64:
        sys.exit(f"idle_conns.py: {n} connections need {n + 64} file descriptors; "
                 f"the limit is {hard} (raise it with ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    before = vmrss_kib(pid)
    conns = []
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        conns += await asyncio.gather(*(one_request(host, port, path) for _ in range(count)))
    await asyncio.sleep(SETTLE_SECONDS)
    after = vmrss_kib(pid)
    idle = sum(1 for reader, _ in conns if not reader.at_eof())
    print(f"opened={len(conns)} idle={idle} before_kib={before} after_kib={after}")
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
