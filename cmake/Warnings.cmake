# Picky warnings for our own C code (never applied to generated protobuf-c output).
set(TW_C_WARNINGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
  -Wpointer-arith -Wwrite-strings -Wvla -Wundef -Wnull-dereference
  -Wimplicit-fallthrough)
if(TW_WERROR)
  list(APPEND TW_C_WARNINGS -Werror)
endif()

if(TW_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

if(TW_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TW_FUZZ needs clang (use the fuzz preset)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -g)
  add_link_options(-fsanitize=address,undefined)
endif()

# tw_target_warnings(target): our warning set on one of our targets.
function(tw_target_warnings target)
  target_compile_options(${target} PRIVATE ${TW_C_WARNINGS})
  target_compile_definitions(${target} PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
endfunction()
