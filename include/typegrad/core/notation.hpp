#pragma once
// How an expression is written, given each op's spelling and a way to print its operands: the one
// set of rules shared by the compile-time printer (core/print.hpp, on expression types) and the
// executor (on its lowered node list: the expression a shape error or a check_finite report
// names), so an expression prints alike wherever it is named. Strings and precedences only, no
// expression type: the bottom layer (docs/architecture.md, "Layers").
#include <cstddef>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace typegrad::notation {

// Precedences of printed forms: an operand whose precedence is below what its place needs is
// parenthesised. Names, calls f(...) and non-negative literals never are.
inline constexpr int atom = 100;
inline constexpr int prefix_precedence = 90;  // -x

// A literal: 2, 0.5, -1 (printed like a prefix minus, so in parentheses as any operator's operand).
inline std::string literal(double v) { return fmt::format("{:g}", v); }
constexpr int literal_precedence(double v) { return v < 0 ? 0 : atom; }

// How an op is written: `a + b` (left-associative) with an infix spelling and two operands, `-a`
// with a prefix spelling and one, else as a call, label(a, b). The views point at the op's static
// spelling (its `infix` / `prefix` members).
struct op_form {
  std::string_view infix, prefix;
  int infix_precedence = atom;
  constexpr int precedence() const {
    return !infix.empty() ? infix_precedence : !prefix.empty() ? prefix_precedence : atom;
  }
};

// Appends op applied to `arity` operands to out: precedence(k) is the precedence of operand k's
// printed form and write(k) appends it; the parentheses are added here.
template <class Precedence, class Write>
void write_op(std::string& out, const op_form& op, std::string_view label, std::size_t arity, Precedence precedence,
              Write write) {
  auto operand = [&](std::size_t k, int min_precedence) {
    const bool parens = precedence(k) < min_precedence;
    if (parens) out += '(';
    write(k);
    if (parens) out += ')';
  };
  if (!op.infix.empty() && arity == 2) {
    operand(0, op.infix_precedence);
    out += ' ';
    out += op.infix;
    out += ' ';
    operand(1, op.infix_precedence + 1);  // a - (b - c): equal precedence needs parentheses on the right
  } else if (!op.prefix.empty() && arity == 1) {
    out += op.prefix;
    operand(0, prefix_precedence);
  } else {
    out += label;
    out += '(';
    for (std::size_t k = 0; k < arity; ++k) {
      if (k) out += ", ";
      operand(k, 0);
    }
    out += ')';
  }
}

// An expression named in a message, cut to `limit` characters. A writer that walks a large DAG may
// stop once its text is longer than limit: what follows is cut anyway.
inline std::string cut(std::string text, std::size_t limit) {
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  return text;
}

}  // namespace typegrad::notation
