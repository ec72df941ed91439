# The CMake package, as a user gets it: `cmake --install` of this build tree into a fresh
# prefix, then a downstream project (downstream/) configured with only that prefix on
# CMAKE_PREFIX_PATH, built and run. Also runs the installed pnnd/pnnctl --version.
#   cmake -DBUILD_DIR=... -DWORK=... -DDOWNSTREAM=... -DVERSION=... [-DLAUNCHER=...]
#         [-DCXX_FLAGS=...] -P install_and_build.cmake
set(prefix ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
file(GLOB config ${prefix}/lib*/cmake/pnn/pnnConfig.cmake)
file(GLOB config_version ${prefix}/lib*/cmake/pnn/pnnConfigVersion.cmake)
if(NOT config OR NOT config_version)
  message(FATAL_ERROR "no pnnConfig.cmake / pnnConfigVersion.cmake under ${prefix}/lib*/cmake/pnn")
endif()
foreach(f bin/pnnd bin/pnnctl bin/pnn-bench include/pnn/training/network.hpp
          include/pnn/client/export.hpp include/pnn/proto/pnn.pb.h include/pnn/common/version.hpp
          include/pnn/drivers/registry.hpp share/pnn/pnn.proto)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${prefix}/${f}")
  endif()
endforeach()

foreach(exe pnnd pnnctl)
  run("${exe} --version" ${prefix}/bin/${exe} --version)
  if(NOT out MATCHES "^${exe} ${VERSION} \\(protocol [0-9]+\\.[0-9]+\\)")
    message(FATAL_ERROR "installed ${exe} --version printed '${out}'")
  endif()
endforeach()

set(args -S ${DOWNSTREAM} -B ${WORK}/build -DCMAKE_BUILD_TYPE=Release
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(LAUNCHER)
  list(APPEND args -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
if(CXX_FLAGS)
  list(APPEND args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}")
endif()
run("configuring the downstream project" ${CMAKE_COMMAND} ${args})
run("building the downstream project" ${CMAKE_COMMAND} --build ${WORK}/build)
run("running the downstream program" ${WORK}/build/downstream)
message(STATUS "downstream printed:\n${out}")
