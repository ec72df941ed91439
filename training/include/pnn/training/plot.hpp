#pragma once
/// Training curves as a self-contained SVG (no plotting dependency; opens in any browser).
#include <string>
#include <vector>

namespace pnn::training {

struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  bool markers = false;  ///< points (a scatter plot) instead of a line
};

struct Panel {
  std::string title;
  std::string y_label;
  std::vector<Series> series;
};

/// Renders panels side by side (shared x label) into an SVG document.
std::string render_svg(const std::string& title, const std::string& x_label,
                       const std::vector<Panel>& panels);

/// Writes the SVG atomically (tmp + rename). Throws std::runtime_error naming the path.
void write_text_file_atomic(const std::string& path, const std::string& content);

}  // namespace pnn::training
