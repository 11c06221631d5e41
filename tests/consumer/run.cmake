# The consumer_package test (cmake -P): installs the already-built library into a temporary prefix
# and builds and runs tests/consumer against it, as a user's project would.
#   -DBUILD_DIR=<typegrad build dir> -DSOURCE_DIR=<this directory> -DWORK_DIR=<scratch dir>
#   -DCXX_COMPILER=... -DGENERATOR=... [-DMAKE_PROGRAM=...] [-DCONFIG=Release]
cmake_minimum_required(VERSION 3.20)
foreach(required BUILD_DIR SOURCE_DIR WORK_DIR CXX_COMPILER GENERATOR)
  if(NOT ${required})
    message(FATAL_ERROR "run.cmake: pass -D${required}=...")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

function(run_step)
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
endfunction()

set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
run_step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})

# The installed package must not point back into the source tree.
get_filename_component(source_root ${SOURCE_DIR}/../.. ABSOLUTE)
file(GLOB_RECURSE package_files ${prefix}/*.cmake)
foreach(f IN LISTS package_files)
  file(READ ${f} text)
  string(FIND "${text}" "${source_root}/include" hit)
  if(NOT hit EQUAL -1)
    message(FATAL_ERROR "${f} refers to the source tree (${source_root}/include)")
  endif()
endforeach()

set(configure_args -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CONFIG)
  list(APPEND configure_args -DCMAKE_BUILD_TYPE=${CONFIG})
endif()
run_step(${CMAKE_COMMAND} ${configure_args})

# find_package must have taken the package just installed, not some other typegrad on the system.
file(STRINGS ${build}/CMakeCache.txt found REGEX "^typegrad_DIR:")
string(REGEX REPLACE "^[^=]*=" "" found "${found}")
file(REAL_PATH "${found}" found)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${found}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "find_package(typegrad) found '${found}', not the package installed in ${prefix}")
endif()

run_step(${CMAKE_COMMAND} --build ${build} ${config_args})

set(exe ${build}/typegrad_consumer)
if(NOT EXISTS ${exe} AND CONFIG)
  set(exe ${build}/${CONFIG}/typegrad_consumer)  # multi-config generators
endif()
run_step(${exe})
