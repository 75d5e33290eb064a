# cmake -DINPUT=file -DOUTPUT=header [-DNAME=kConstant] -P EmbedText.cmake
# Writes a header defining NAME (default `kWsgiGlueSource`), the file's text as a raw string
# literal.
if(NOT DEFINED NAME)
  set(NAME kWsgiGlueSource)
endif()
file(READ ${INPUT} CONTENT)
file(WRITE ${OUTPUT} "// Generated from ${INPUT}. Do not edit.\n#pragma once\n"
  "inline constexpr char ${NAME}[] = R\"RLBGLUE(${CONTENT})RLBGLUE\";\n")
