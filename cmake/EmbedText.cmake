# cmake -DINPUT=file -DOUTPUT=header -P EmbedText.cmake
# Writes a header defining `kWsgiGlueSource`, the file's text as a raw string literal.
file(READ ${INPUT} CONTENT)
file(WRITE ${OUTPUT} "// Generated from ${INPUT}. Do not edit.\n#pragma once\n"
  "inline constexpr char kWsgiGlueSource[] = R\"RLBGLUE(${CONTENT})RLBGLUE\";\n")
