# Runs PROG and compares its standard output with the file EXPECTED.
execute_process(COMMAND ${PROG} OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROG} exited with ${rc}\nstderr:\n${err}")
endif()
file(READ ${EXPECTED} want)
if(NOT out STREQUAL want)
  message(FATAL_ERROR "${PROG}: output differs\n--- expected\n${want}\n--- got\n${out}")
endif()
