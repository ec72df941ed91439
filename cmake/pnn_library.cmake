include(GNUInstallDirs)

# pnn_install_library(<target> <export name> [<public include dir>...])
# Installs a library into the export set pnnTargets (as pnn::<export name>, the name its alias
# has in this build) and the headers of its include directories (docs/install.md).
function(pnn_install_library target export_name)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  install(TARGETS ${target} EXPORT pnnTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  foreach(dir IN LISTS ARGN)
    install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endforeach()
endfunction()

# pnn_add_library(<folder> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One library per top-level folder: target pnn_<folder>, alias pnn::<folder>, public headers in
# <folder>/include, sources in <folder>/src (globbed, so adding a file needs no CMake edit).
# Installed with its headers (pnn_install_library).
function(pnn_add_library folder)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS;EXTRA_SOURCE_DIRS" ${ARGN})
  set(dirs ${CMAKE_CURRENT_SOURCE_DIR}/src ${ARG_EXTRA_SOURCE_DIRS})
  set(sources)
  foreach(dir IN LISTS dirs)
    file(GLOB_RECURSE found CONFIGURE_DEPENDS ${dir}/*.cpp)
    list(APPEND sources ${found})
  endforeach()
  add_library(pnn_${folder} ${sources})
  add_library(pnn::${folder} ALIAS pnn_${folder})
  target_include_directories(pnn_${folder} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                                  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(pnn_${folder} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} pnn::warnings)
  pnn_install_library(pnn_${folder} ${folder} ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()
