#!/usr/bin/python3
"""twc_gen.py - emits the typed C stubs of libtwclient from a FileDescriptorSet.

Purpose: every RPC of every selected service gets one typed C function, so no per-method code
is written by hand. Input is the descriptor set the build already produces for reflection
(protoc --include_imports --descriptor_set_out), so the stubs can never disagree with the
contracts the server serves.

Output (both into the build directory, never checked in):
  twc_services.h  typed prototypes, one `twc_method` descriptor per RPC, the method table
  twc_services.c  the stubs: each casts to/from the generic core (twc_call_unary /
                  twc_call_stream) with the right protobuf-c descriptors

Naming: twc_<service>_<method> in snake case (Orders.SubmitOrder -> twc_orders_submit_order).
protoc-c's own C names (types Tradewink__V1__Order, descriptors
tradewink__v1__order__descriptor) are derived with protoc-c's rules; a mistake there is a
compile error, never a silent mismatch.

Invariants: unary and server-streaming RPCs only; a client-streaming or bidi RPC in a selected
package stops generation with an error (the core has no API for them yet), so a new contract
can never be silently left without a stub. Output is deterministic (sorted by file, then
declaration order) and only rewritten when its content changes.
"""

import argparse
import os
import re
import sys

from google.protobuf import descriptor_pb2


def camel_to_lower(name):
    """protoc-c's CamelToLower: '_' before an upper-case letter that follows a non-upper one."""
    out = []
    was_upper = True
    for ch in name:
        up = ch.isupper()
        if up:
            if not was_upper:
                out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
        was_upper = up
    return "".join(out)


def to_camel(name):
    """protoc-c's ToCamel for package components: capitalize, drop '_' and capitalize after."""
    out = []
    cap = True
    for ch in name:
        if ch == "_":
            cap = True
        elif cap:
            out.append(ch.upper())
            cap = False
        else:
            out.append(ch)
    return "".join(out)


def c_type(package, msg_path):
    """C struct name of a message: package parts camelized, message parts verbatim, '__'."""
    parts = [to_camel(p) for p in package.split(".") if p] + msg_path.split(".")
    return "__".join(parts)


def c_descriptor(package, msg_path):
    parts = [p.lower() for p in package.split(".") if p]
    parts += [camel_to_lower(p) for p in msg_path.split(".")]
    return "__".join(parts) + "__descriptor"


def snake(name):
    """Readable snake case for our own function names: WhoAmI -> who_am_i, HaltAll -> halt_all."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def index_messages(fds):
    """Map '.pkg.Msg[.Nested]' -> (package, 'Msg[.Nested]', file name)."""
    out = {}

    def walk(fdp, prefix, msgs):
        for m in msgs:
            path = prefix + m.name
            out["." + (fdp.package + "." if fdp.package else "") + path] = (
                fdp.package, path, fdp.name)
            walk(fdp, path + ".", m.nested_type)

    for fdp in fds.file:
        walk(fdp, "", fdp.message_type)
    return out


def header_of(proto_file):
    return re.sub(r"\.proto$", ".pb-c.h", proto_file)


def collect(fds, packages):
    msgs = index_messages(fds)
    methods = []
    headers = set()
    for fdp in sorted(fds.file, key=lambda f: f.name):
        if fdp.package not in packages or not fdp.service:
            continue
        headers.add(header_of(fdp.name))
        for svc in fdp.service:
            for m in svc.method:
                if m.client_streaming:
                    raise SystemExit(
                        "twc_gen: %s.%s/%s is client-streaming or bidi; libtwclient has no API "
                        "for that yet" % (fdp.package, svc.name, m.name))
                ipkg, ipath, ifile = msgs[m.input_type]
                opkg, opath, ofile = msgs[m.output_type]
                headers.add(header_of(ifile))
                headers.add(header_of(ofile))
                methods.append({
                    "service": fdp.package + "." + svc.name,
                    "method": m.name,
                    "path": "/%s.%s/%s" % (fdp.package, svc.name, m.name),
                    "fn": "twc_%s_%s" % (snake(svc.name), snake(m.name)),
                    "req": c_type(ipkg, ipath),
                    "req_desc": c_descriptor(ipkg, ipath),
                    "resp": c_type(opkg, opath),
                    "resp_desc": c_descriptor(opkg, opath),
                    "stream": bool(m.server_streaming),
                })
    names = [m["fn"] for m in methods]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SystemExit("twc_gen: C name collision: %s" % ", ".join(dup))
    missing = [p for p in packages if not any(m["service"].startswith(p + ".") for m in methods)]
    if missing:
        raise SystemExit("twc_gen: no services found for package(s): %s" % ", ".join(missing))
    return methods, sorted(headers)


def gen_header(methods, headers, src):
    w = []
    w.append("/* Generated by client/gen/twc_gen.py from %s. Do not edit. */" % src)
    w.append("/*")
    w.append(" * Typed stubs for every RPC. Ownership, for every function below:")
    w.append(" *  - req is borrowed for the call only; NULL means an all-default request.")
    w.append(" *  - unary: on TWC_OK (st.code == 0) *out is a decoded response owned by the caller,")
    w.append(" *    freed with twc_message_free(); otherwise *out is NULL. The returned status")
    w.append(" *    owns its message: release it with twc_status_clear().")
    w.append(" *  - server streaming: on TWC_OK *out is a stream owned by the caller, closed with")
    w.append(" *    twc_stream_close(); read it with twc_stream_next() or the typed _next below.")
    w.append(" */")
    w.append("#ifndef TWC_SERVICES_H")
    w.append("#define TWC_SERVICES_H")
    w.append("")
    w.append('#include "twclient.h"')
    for h in headers:
        w.append('#include "%s"' % h)
    w.append("")
    w.append("#ifdef __cplusplus")
    w.append('extern "C" {')
    w.append("#endif")
    current = None
    for m in methods:
        if m["service"] != current:
            current = m["service"]
            w.append("")
            w.append("/* ---- %s ---- */" % current)
        w.append("")
        w.append("/* %s */" % m["path"])
        w.append("extern const twc_method %s_method;" % m["fn"])
        if m["stream"]:
            w.append("twc_status %s(twc_client *c, const %s *req, twc_stream **out,"
                     % (m["fn"], m["req"]))
            w.append("    const twc_call_opts *opts);")
            w.append("/* Typed twc_stream_next(): 1 = *msg set (caller frees with "
                     "twc_message_free), 0 = end. */")
            w.append("int %s_next(twc_stream *s, %s **msg);" % (m["fn"], m["resp"]))
        else:
            w.append("twc_status %s(twc_client *c, const %s *req, %s **out,"
                     % (m["fn"], m["req"], m["resp"]))
            w.append("    const twc_call_opts *opts);")
    w.append("")
    w.append("/* Every method above, in this order; for tools and tests that walk the API. */")
    w.append("extern const twc_method *const twc_methods[];")
    w.append("extern const size_t twc_methods_count;")
    w.append("")
    w.append("/* The method whose path is \"/pkg.Service/Method\", or NULL. Borrowed, static. */")
    w.append("const twc_method *twc_method_find(const char *path);")
    w.append("")
    w.append("#ifdef __cplusplus")
    w.append("}")
    w.append("#endif")
    w.append("#endif")
    return "\n".join(w) + "\n"


def gen_source(methods, src):
    w = []
    w.append("/* Generated by client/gen/twc_gen.py from %s. Do not edit. */" % src)
    w.append("/* Each stub only converts types; all transport logic is in twclient.c. */")
    w.append('#include "twc_services.h"')
    w.append("")
    w.append("#include <string.h>")
    for m in methods:
        fn = m["fn"]
        w.append("")
        if m["stream"]:
            w.append("static twc_status %s_open_generic(twc_client *c, const ProtobufCMessage *req,"
                     % fn)
            w.append("    twc_stream **out, const twc_call_opts *opts)")
            w.append("{")
            w.append("    return twc_call_stream(c, &%s_method, req, out, opts);" % fn)
            w.append("}")
        else:
            w.append("static twc_status %s_invoke_generic(twc_client *c, const ProtobufCMessage "
                     "*req," % fn)
            w.append("    ProtobufCMessage **out, const twc_call_opts *opts)")
            w.append("{")
            w.append("    return twc_call_unary(c, &%s_method, req, out, opts);" % fn)
            w.append("}")
        w.append("")
        w.append("const twc_method %s_method = {" % fn)
        w.append('    .path = "%s",' % m["path"])
        w.append('    .service = "%s",' % m["service"])
        w.append('    .name = "%s",' % m["method"])
        w.append('    .c_name = "%s",' % fn)
        w.append("    .input = &%s," % m["req_desc"])
        w.append("    .output = &%s," % m["resp_desc"])
        w.append("    .server_streaming = %d," % (1 if m["stream"] else 0))
        if m["stream"]:
            w.append("    .invoke = NULL,")
            w.append("    .open = %s_open_generic," % fn)
        else:
            w.append("    .invoke = %s_invoke_generic," % fn)
            w.append("    .open = NULL,")
        w.append("};")
        w.append("")
        if m["stream"]:
            w.append("twc_status %s(twc_client *c, const %s *req, twc_stream **out,"
                     % (fn, m["req"]))
            w.append("    const twc_call_opts *opts)")
            w.append("{")
            w.append("    return twc_call_stream(c, &%s_method, req ? &req->base : NULL, out, opts);"
                     % fn)
            w.append("}")
            w.append("")
            w.append("int %s_next(twc_stream *s, %s **msg)" % (fn, m["resp"]))
            w.append("{")
            w.append("    ProtobufCMessage *base = NULL;")
            w.append("    int r = twc_stream_next(s, &base);")
            w.append("    /* base is the first member, so this is the typed message. */")
            w.append("    *msg = r == 1 ? (%s *)(void *)base : NULL;" % m["resp"])
            w.append("    return r;")
            w.append("}")
        else:
            w.append("twc_status %s(twc_client *c, const %s *req, %s **out,"
                     % (fn, m["req"], m["resp"]))
            w.append("    const twc_call_opts *opts)")
            w.append("{")
            w.append("    ProtobufCMessage *base = NULL;")
            w.append("    twc_status st = twc_call_unary(c, &%s_method, req ? &req->base : NULL, "
                     "&base, opts);" % fn)
            w.append("    /* base is the first member, so this is the typed message. */")
            w.append("    *out = (%s *)(void *)base;" % m["resp"])
            w.append("    return st;")
            w.append("}")
    w.append("")
    w.append("const twc_method *const twc_methods[] = {")
    for m in methods:
        w.append("    &%s_method," % m["fn"])
    w.append("};")
    w.append("const size_t twc_methods_count = sizeof twc_methods / sizeof twc_methods[0];")
    w.append("")
    w.append("const twc_method *twc_method_find(const char *path)")
    w.append("{")
    w.append("    if (path == NULL)")
    w.append("        return NULL;")
    w.append("    for (size_t i = 0; i < twc_methods_count; i++)")
    w.append("        if (strcmp(twc_methods[i]->path, path) == 0)")
    w.append("            return twc_methods[i];")
    w.append("    return NULL;")
    w.append("}")
    return "\n".join(w) + "\n"


def write_if_changed(path, text):
    try:
        with open(path, "r", encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fds", required=True, help="FileDescriptorSet with imports")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--package", action="append", required=True,
                    help="proto package whose services get stubs (repeatable)")
    args = ap.parse_args()
    fds = descriptor_pb2.FileDescriptorSet()
    with open(args.fds, "rb") as f:
        fds.ParseFromString(f.read())
    methods, headers = collect(fds, args.package)
    src = os.path.basename(args.fds)
    os.makedirs(args.out_dir, exist_ok=True)
    write_if_changed(os.path.join(args.out_dir, "twc_services.h"),
                     gen_header(methods, headers, src))
    write_if_changed(os.path.join(args.out_dir, "twc_services.c"), gen_source(methods, src))
    return 0


if __name__ == "__main__":
    sys.exit(main())
