#pragma once
// Boost.Test glue for the gradient checker:
//   BOOST_TEST(typegrad::testing::gradients_ok(report));
// passes when report.ok(); otherwise the failure message is the report's table.
#include <boost/test/tools/assertion_result.hpp>

#include "typegrad/tools/gradcheck.hpp"

namespace typegrad::testing {

inline boost::test_tools::predicate_result gradients_ok(const gradient_report& report) {
  boost::test_tools::predicate_result result(report.ok());
  if (!report.ok()) result.message() << "\n" << typegrad::to_string(report);
  return result;
}

}  // namespace typegrad::testing
