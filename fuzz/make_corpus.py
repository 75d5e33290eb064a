#!/usr/bin/env python3
"""Writes the hand-made seed corpora under fuzz/corpus/<fuzzer>/ (idempotent; files added
later, e.g. regression inputs, are left alone). Run from anywhere:
    python3 fuzz/make_corpus.py
The frame-codec seeds are the valid frames of tests/vectors/protocol_vectors.json plus a few
multi-frame streams and small malformed frames."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def write(fuzzer, name, data):
    d = os.path.join(HERE, "corpus", fuzzer)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- fuzz_frame_codec
# Byte 0: how the stream is cut (0 = all at once, else pseudo-random pieces).
vectors = json.load(open(os.path.join(ROOT, "tests", "vectors", "protocol_vectors.json")))
valid = {v["name"]: bytes.fromhex(v["hex"]) for v in vectors["valid"]}
for name, frame in valid.items():
    write("fuzz_frame_codec", "valid_" + name, b"\x00" + frame)
stream_lb = valid["hello_lb"] + valid["request_get"] + valid["request_body_text"] + \
    valid["request_end"] + valid["keepalive"] + valid["cancel"]
stream_worker = valid["hello_worker"] + valid["resume_two"] + valid["response_200_two_headers"] + \
    valid["response_body"] + valid["response_end_complete"] + valid["goaway"]
write("fuzz_frame_codec", "stream_lb_pieces1", b"\x01" + stream_lb)
write("fuzz_frame_codec", "stream_lb_pieces7", b"\x07" + stream_lb)
write("fuzz_frame_codec", "stream_worker_pieces16", b"\x4f" + stream_worker)
write("fuzz_frame_codec", "stream_worker_truncated", b"\x03" + stream_worker[:-3])
MALFORMED = {"length_zero", "length_over_16mib", "unknown_kind_0x07", "hello_with_rno",
             "request_end_rno_0", "hello_bad_magic", "resume_nan", "request_truncated_environ",
             "response_status_letters", "response_end_outcome_2", "request_body_empty"}
for v in vectors["malformed"]:
    if v["name"] in MALFORMED:
        write("fuzz_frame_codec", "malformed_" + v["name"], b"\x00" + bytes.fromhex(v["hex"]))

# ---------------------------------------------------------------- fuzz_http_request
# Byte 0: limits (bits 0-1 header bytes 64/300/4096/64Ki, bits 2-3 headers 1/4/16/100,
# bits 4-5 body 0/10/1000/1Gi, bit 6 feed while paused); byte 1: pieces (0 = all at once).
DEFAULT = 0x3F  # the LB's default limits
SMALL = 0x15    # 300 header bytes, 4 headers, 10 body bytes
http = {
    "get_host": (DEFAULT, 0, "GET /shop/cart?x=1 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
    "post_length": (DEFAULT, 0, "POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 11\r\n\r\nhello world"),
    "post_chunked": (DEFAULT, 0x03, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
    "pipelined": (DEFAULT | 0x40, 0x05, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                  "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc"
                  "GET /3 HTTP/1.1\r\nHost: www.c\r\nConnection: close\r\n\r\n"),
    "http10": (DEFAULT, 0, "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n"),
    "http10_keepalive": (DEFAULT, 0x02, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                         "GET /b HTTP/1.0\r\n\r\n"),
    "expect_continue": (DEFAULT, 0, "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                        "Content-Length: 4\r\n\r\nbody"),
    "absolute_form": (DEFAULT, 0, "GET http://example.com:8080/p%41th/%zz%2?q=%20#frag HTTP/1.1\r\n"
                      "Host: example.com\r\n\r\n"),
    "repeated_headers": (DEFAULT, 0x11, "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n"
                         "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX_Under: dropped\r\n"
                         "Accept:  text/html \t\r\n\r\n"),
    "close_then_more": (DEFAULT, 0, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                        "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    "too_many_headers": (0x03, 0, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"),
    "body_too_large": (SMALL, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"),
    "chunked_too_large": (SMALL, 0x02, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"),
    "uri_too_long": (0x3C, 0, "GET /" + "a" * 80 + " HTTP/1.1\r\nHost: a\r\n\r\n"),
    "headers_too_large": (0x3D, 0x07, "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + "v" * 300 + "\r\n\r\n"),
    "cl_and_te": (DEFAULT, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "conflicting_cl": (DEFAULT, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Content-Length: 4\r\n\r\nabcd"),
    "te_gzip": (DEFAULT, 0, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
    "http2": (DEFAULT, 0, "GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
    "expect_other": (DEFAULT, 0, "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"),
    "methods": (DEFAULT | 0x40, 0x09, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nOPTIONS * HTTP/1.1\r\n"
                "Host: a\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"
                "DELETE /d HTTP/1.1\r\nHost: a\r\n\r\n"),
    "bad_method": (DEFAULT, 0, "get / HTTP/1.1\r\nHost: a\r\n\r\n"),
    "space_in_header_name": (DEFAULT, 0, "GET / HTTP/1.1\r\nHo st: a\r\n\r\n"),
    "bare_lf": (DEFAULT, 0, "GET / HTTP/1.1\nHost: a\n\n"),
    # Regressions (docs/reliability.md, "Fuzzing"): CONNECT / Upgrade requests made llhttp
    # stop after the headers.
    "regress_connect_body": (DEFAULT, 0, "CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 32\r\n"
                             "\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
    "regress_upgrade_h2c": (DEFAULT, 0, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                            "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
                            "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
    # A request class over the protocol's 4096 bytes (host and regex classifiers).
    "regress_class_over_4096_host": (DEFAULT, 0, "GET / HTTP/1.1\r\nHost: " + "h" * 4200 + "\r\n\r\n"),
    "regress_class_over_4096_path": (DEFAULT, 0, "GET /" + "p" * 4200 + " HTTP/1.1\r\nHost: a\r\n\r\n"),
}
for name, (c0, c1, text) in http.items():
    write("fuzz_http_request", name, bytes([c0, c1]) + text.encode("latin-1"))

# ---------------------------------------------------------------- fuzz_config
# Byte 0 % 9 selects the target; bit 7 the variant (zkresumelb's command line).
config = {
    "classifier_host": (0, "host\n"),
    "classifier_none": (0, "none"),
    "classifier_re": (0, "re:PATH_INFO:^/(?P<class>[^/]+)\n/shop/cart"),
    "classifier_py": (0, 'zc.resumelb.lb:re_classifier("HTTP_HOST", r"(?P<class>[a-z]+)\\.example")\n'
                         "www.shop.example"),
    "classifier_bad_regex": (0, "re:X:(?P<class>"),
    "classifier_no_group": (0, "re:PATH_INFO:^/foo"),
    "cmdline_resumelb": (1, "-a\0:8080\0-r\0re:PATH_INFO:^/(?P<class>[^/]+)\0-p\0classless\0"
                            "-v\0" "2.5\0-LDEBUG\0--backlog-history=7\0-t\0" "5"),
    "cmdline_zk": (136, "-v\0-a\0" "127.0.0.1:0\0--max-retries=2\0zookeeper:2181\0/lb"),
    "cmdline_bad_timeouts": (1, "--worker_timeout=0.5\0--worker_keepalive=1\0--\0-x"),
    "cmdline_unknown": (1, "-q\0x"),
    "pool_settings": (2, "variance=4\nbacklog_history=6.2\nunskilled_score=0.5"),
    "pool_settings_bad": (2, "variance=0\nbacklog_history=abc"),
    "pool_settings_ws": (2, "backlog_history= 7 \nunskilled_score=\t1e-3\n"),
    "hostport_any": (3, ":8080"),
    "hostport_v6": (3, "[::1]:80"),
    "hostport_name": (3, "localhost:65535"),
    "hostport_bad": (3, "host:99999"),
    "resume_file": (4, '{"a": 1.5, "/search": 0.875, "caf\\u00e9": 12, "z\\u0000": 3e2}'),
    "resume_file_edge": (4, '{"big": 1e300, "tiny": 5e-324, "neg": -1, "zero": 0}'),
    "resume_file_bad": (4, '{"x": "1"}'),
    "lb_settings": (5, '{"variance": 2, "backlog_history": "6.2", "unskilled_score": 0.25}'),
    "lb_settings_bad": (5, '{"variance": "abc", "backlog_history": 18446744073709551615}'),
    "worker_node": (6, '{"pid": 12, "version": "1.2"}'),
    "worker_node_number": (6, '{"version": 3.5}'),
    "worker_settings": (7, '{"history": 50, "max_skill_age": "500"}'),
    "worker_settings_bad": (7, '{"history": 0}'),
    "zk_link": (8, '/lb\nworkers\n{"workers ->": "../pool/./workers"}'),
    "zk_link_abs": (8, '/\nproviders\n{"providers ->": "/a//b/../c/"}'),
}
for name, (sel, text) in config.items():
    write("fuzz_config", name, bytes([sel]) + text.encode("latin-1"))
