#!/usr/bin/env python3
"""POSTs SIZE bytes to the LB at 127.0.0.1:PORT as 1-byte chunks (docs/reliability.md,
"Hostile clients"). Usage: chunked_upload.py PORT SIZE [PATH]"""
import socket, sys, time, os
port = int(sys.argv[1]); size = int(sys.argv[2]); path = sys.argv[3] if len(sys.argv) > 3 else "/echo"
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
chunk = b"1\r\nx\r\n"
batch = chunk * 4096
sent = 0
while sent < size:
    s.sendall(batch); sent += 4096
s.sendall(b"0\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(65536)
print(data.split(b"\r\n")[0].decode())
