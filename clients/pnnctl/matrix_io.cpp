#include "matrix_io.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "errors.hpp"

namespace pnnctl {

namespace {

using nlohmann::json;

bool looks_like_json(const std::string& text) {
  const auto p = text.find_first_not_of(" \t\r\n");
  return p != std::string::npos && text[p] == '[';
}

double checked(double v, const std::string& what, std::size_t row, std::size_t col) {
  if (!std::isfinite(v)) {
    throw UsageError(what + ": value at row " + std::to_string(row + 1) + ", column " +
                     std::to_string(col + 1) + " is not finite");
  }
  return v;
}

double json_number(const json& v, const std::string& what, std::size_t row, std::size_t col) {
  if (!v.is_number()) {
    throw UsageError(what + ": row " + std::to_string(row + 1) + ", column " +
                     std::to_string(col + 1) + " is " + v.dump() + ", not a number");
  }
  return checked(v.get<double>(), what, row, col);
}

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw UsageError(what + ": not valid JSON (" + e.what() + "); write [[x11, x12], [x21, x22]]");
  }
}

// The numbers of one CSV line (commas and/or blanks between values).
std::vector<double> csv_values(std::string line, const std::string& what, std::size_t row) {
  for (auto& c : line) {
    if (c == ',' || c == ';' || c == '\t' || c == '\r') c = ' ';
  }
  std::vector<double> out;
  std::istringstream in(line);
  std::string token;
  while (in >> token) {
    char* end = nullptr;
    const double v = std::strtod(token.c_str(), &end);
    if (end == token.c_str() || *end != '\0') {
      throw UsageError(what + ": row " + std::to_string(row + 1) + ": '" + token +
                       "' is not a number");
    }
    out.push_back(checked(v, what, row, out.size()));
  }
  return out;
}

}  // namespace

std::string read_text_file(const std::string& path, const std::string& option) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path);
  if (!in) throw UsageError(option + " " + path + ": cannot read the file");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Batch parse_batch(const std::string& text, const std::string& what) {
  Batch b;
  auto add_row = [&](const std::vector<double>& row) {
    if (b.rows == 0) b.cols = row.size();
    if (row.size() != b.cols) {
      throw UsageError(what + ": row " + std::to_string(b.rows + 1) + " has " +
                       std::to_string(row.size()) + " values, row 1 has " + std::to_string(b.cols) +
                       " (every sample needs the same length)");
    }
    b.data.insert(b.data.end(), row.begin(), row.end());
    ++b.rows;
  };
  if (looks_like_json(text)) {
    const json j = parse_json(text, what);
    const bool nested = !j.empty() && j.front().is_array();
    const json rows = nested ? j : json::array({j});
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (!rows[r].is_array()) {
        throw UsageError(what + ": element " + std::to_string(r + 1) +
                         " is not a list; write [[x11, x12], [x21, x22]]");
      }
      std::vector<double> row;
      for (std::size_t c = 0; c < rows[r].size(); ++c)
        row.push_back(json_number(rows[r][c], what, r, c));
      add_row(row);
    }
  } else {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      const auto row = csv_values(line, what, b.rows);
      if (!row.empty()) add_row(row);
    }
  }
  if (b.rows == 0 || b.cols == 0) {
    throw UsageError(what + ": no values (give at least one sample, e.g. [[0.5]])");
  }
  return b;
}

std::vector<double> parse_vector(const std::string& text, const std::string& what) {
  std::vector<double> out;
  if (looks_like_json(text)) {
    const json j = parse_json(text, what);
    for (std::size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_number()) {
        throw UsageError(what + ": entry " + std::to_string(i + 1) + " is " + j[i].dump() +
                         ", not a number (write a flat list [0.1, 0.2])");
      }
      out.push_back(checked(j[i].get<double>(), what, 0, i));
    }
  } else {
    std::istringstream in(text);
    std::string line;
    std::size_t row = 0;
    while (std::getline(in, line)) {
      if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      for (double v : csv_values(line, what, row)) out.push_back(v);
      ++row;
    }
  }
  if (out.empty()) throw UsageError(what + ": no values");
  return out;
}

}  // namespace pnnctl
