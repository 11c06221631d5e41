# The include graph's layers (docs/architecture.md, "Layers"), checked on the sources:
#   bottom   core/shape.hpp, core/errors.hpp, core/fixed_string.hpp, core/notation.hpp: extents,
#            views, errors, how an op prints (for the expression printer and the executor alike)
#   kernels  kernels/ (the kernels' declarations), runtime/denormals.hpp, runtime/executor.hpp
#            and src/kernels/, src/runtime/: extents and pointers only,
#            never an expression type: nothing from core's graph layer or from ops/
#   core     core/expression.hpp, graph.hpp, grad.hpp, print.hpp (hana.hpp, static_shapes.hpp
#            beside it): print depends on graph, never the reverse; expression.hpp includes neither
#   ops      ops/: no runtime program, no tools
#   src/     src/parallel/ (parallel_chunks, the floating-point mode) is bottom-layer: everything in
#            src/ may include it, it includes no other part of src/; src/train, data, distributed
#            and runtime include nothing of src/kernels/ (the executor knows kernels as pointers)
# A relative include ("../parallel/parallel_chunks.hpp") is checked as the path it resolves to.
# Run by ctest: cmake -DSOURCE=<repository> -P this.
set(graph_layer "typegrad/core/(expression|graph|grad|print|hana|op_concepts|static_shapes)\\.hpp|typegrad/ops/|typegrad/runtime/program\\.hpp|typegrad/tools/|typegrad/train|typegrad/data/|typegrad/distributed")
set(rules
  "include/typegrad/core/shape.hpp|include/typegrad/core/errors.hpp|include/typegrad/core/fixed_string.hpp|include/typegrad/core/notation.hpp=>${graph_layer}|typegrad/runtime/|typegrad/kernels/|typegrad/tensor\\.hpp"
  "include/typegrad/kernels/.*|include/typegrad/runtime/denormals.hpp|include/typegrad/runtime/executor.hpp=>${graph_layer}"
  "src/kernels/.*|src/runtime/.*=>${graph_layer}"
  "include/typegrad/core/graph.hpp=>typegrad/core/print\\.hpp|typegrad/ops/"
  "include/typegrad/core/expression.hpp=>typegrad/core/(print|graph|grad)\\.hpp|typegrad/ops/"
  "include/typegrad/ops/.*=>typegrad/runtime/program\\.hpp|typegrad/tools/|typegrad/train"
  "src/parallel/.*=>${graph_layer}|src/(kernels|runtime|train|data|distributed|tools)/"
  "src/(train|data|distributed|runtime)/.*=>src/kernels/")
file(GLOB_RECURSE files RELATIVE ${SOURCE} ${SOURCE}/include/*.hpp ${SOURCE}/src/*.hpp ${SOURCE}/src/*.cpp)
set(broken "")
set(checked 0)
foreach(rule IN LISTS rules)
  string(REPLACE "=>" ";" parts "${rule}")
  list(GET parts 0 who)
  list(GET parts 1 forbidden)
  foreach(f IN LISTS files)
    if(NOT f MATCHES "^(${who})$")
      continue()
    endif()
    math(EXPR checked "${checked} + 1")
    file(STRINGS ${SOURCE}/${f} includes REGEX "^#include [<\"]")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include [<\"]([^>\"]+)[>\"].*" "\\1" target "${line}")
      if(line MATCHES "^#include \"" AND NOT target MATCHES "^typegrad/")
        get_filename_component(dir ${f} DIRECTORY)
        get_filename_component(target ${dir}/${target} ABSOLUTE BASE_DIR ${SOURCE})
        file(RELATIVE_PATH target ${SOURCE} ${target})
      endif()
      if(target MATCHES "^(${forbidden})")
        list(APPEND broken "${f} includes ${target}")
      endif()
    endforeach()
  endforeach()
endforeach()
if(broken)
  list(JOIN broken "\n" text)
  message(FATAL_ERROR "includes across the layers:\n${text}")
endif()
message(STATUS "${checked} file checks, no include crosses a layer")
