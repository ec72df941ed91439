#pragma once
/// The tensor types live in the foundation library (pnn/common/tensor.hpp); this header keeps the
/// digital_twin spelling for the twins' code.
#include "pnn/common/tensor.hpp"
