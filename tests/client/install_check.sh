#!/bin/sh
# client_install: `cmake --install` into a temporary prefix, then build and run a program
# against the installed headers, library and twclient.pc only (shared and static).
# Usage: install_check.sh BUILD_DIR
set -eu
build=$1
prefix=$(mktemp -d "${TMPDIR:-/tmp}/twc-install-XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/twclient/twc_services.h"
test -f "$prefix/include/twclient/proto/tradewink/v1/orders.pb-c.h"
test -x "$prefix/bin/twctl"
cat > "$prefix/t.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <twc_services.h>
int main(void)
{
    twc_client *c = NULL;
    twc_status st = twc_client_create(NULL, &c);
    const twc_method *m = twc_method_find("/tradewink.v1.Orders/SubmitOrder");
    int ok = st.code == TWC_OK && m == &twc_orders_submit_order_method && twc_methods_count > 30;
    twc_client_destroy(c);
    puts(ok ? "ok" : "bad");
    return ok ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc "$prefix/t.c" $(pkg-config --cflags --libs twclient) -o "$prefix/t_shared"
LD_LIBRARY_PATH="$prefix/lib" "$prefix/t_shared"
cc "$prefix/t.c" $(pkg-config --cflags twclient) "$prefix/lib/libtwclient.a" \
   $(pkg-config --libs grpc libprotobuf-c) -lpthread -o "$prefix/t_static"
"$prefix/t_static"
