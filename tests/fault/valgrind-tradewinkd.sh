#!/bin/sh
# valgrind-tradewinkd.sh - run tradewinkd under valgrind memcheck, for TW_BINARY.
#
#   TW_BINARY=tests/fault/valgrind-tradewinkd.sh VG_TRADEWINKD=build/.../tradewinkd \
#       /usr/bin/python3 tests/services/test_keyvault.py
#
# Exits 99 on any memcheck error (invalid read/write, use of uninitialised values, definite or
# possible leaks counted as errors via --errors-for-leak-kinds=definite). The report goes to
# $VG_LOG_DIR/vg.<pid>.log (default /tmp) so the test's stderr parsing is untouched.
# (Not TW_* names: the test helpers strip TW_* from the server environment.)
set -eu
: "${VG_TRADEWINKD:?set VG_TRADEWINKD to the tradewinkd binary}"
dir=${VG_LOG_DIR:-/tmp}
exec valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --error-exitcode=99 --track-origins=no \
    --log-file="$dir/vg.%p.log" "$VG_TRADEWINKD" "$@"
