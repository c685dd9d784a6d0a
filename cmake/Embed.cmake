# cmake -DIN=file -DOUT=file.c -DSYMBOL=name -P Embed.cmake
# Writes `const unsigned char SYMBOL[]` and `const size_t SYMBOL_len` holding IN's bytes.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\n#include <stddef.h>\n"
  "const unsigned char ${SYMBOL}[] = {\n${body}\n};\nconst size_t ${SYMBOL}_len = ${len};\n")
