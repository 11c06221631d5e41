#pragma once
// typegrad::distributed: data-parallel training on MPI (optional; CMake target
// typegrad::distributed, built when MPI is found). See docs/distributed.md.
#include "typegrad/distributed/checkpoint.hpp"
#include "typegrad/distributed/consistency.hpp"
#include "typegrad/distributed/reducer.hpp"
#include "typegrad/distributed/training.hpp"
#include "typegrad/distributed/world.hpp"
