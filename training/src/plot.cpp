#include "pnn/training/plot.hpp"

#include "pnn/common/atomic_write.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace pnn::training {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// "Nice" tick step covering span with about `target` ticks.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10.0 * mag;
}

}  // namespace

std::string render_svg(const std::string& title, const std::string& x_label,
                       const std::vector<Panel>& panels) {
  const double pw = 420, ph = 300, ml = 60, mr = 20, mt = 50, mb = 50;
  const double width = std::max<std::size_t>(1, panels.size()) * (pw + ml + mr);
  const double height = ph + mt + mb + 30;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">"
    << escape(title) << "</text>\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const Panel& panel = panels[p];
    const double ox = static_cast<double>(p) * (pw + ml + mr) + ml, oy = mt;
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& se : panel.series) {
      for (std::size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
        if (!std::isfinite(se.y[i])) continue;
        x0 = std::min(x0, se.x[i]);
        x1 = std::max(x1, se.x[i]);
        y0 = std::min(y0, se.y[i]);
        y1 = std::max(y1, se.y[i]);
      }
    }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1e-3;
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    auto sx = [&](double x) { return ox + (x - x0) / (x1 - x0) * pw; };
    auto sy = [&](double y) { return oy + ph - (y - y0) / (y1 - y0) * ph; };
    s << "<text x=\"" << ox + pw / 2 << "\" y=\"" << oy - 10 << "\" text-anchor=\"middle\">"
      << escape(panel.title) << "</text>\n"
      << "<rect x=\"" << ox << "\" y=\"" << oy << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
    const double ys = nice_step(y1 - y0, 5);
    for (double t = std::ceil(y0 / ys) * ys; t <= y1; t += ys) {
      s << "<line x1=\"" << ox << "\" x2=\"" << ox + pw << "\" y1=\"" << sy(t) << "\" y2=\""
        << sy(t) << "\" stroke=\"#ddd\"/><text x=\"" << ox - 6 << "\" y=\"" << sy(t) + 4
        << "\" text-anchor=\"end\">" << fmt(t) << "</text>\n";
    }
    const double xs = nice_step(x1 - x0, 6);
    for (double t = std::ceil(x0 / xs) * xs; t <= x1; t += xs) {
      s << "<text x=\"" << sx(t) << "\" y=\"" << oy + ph + 16 << "\" text-anchor=\"middle\">"
        << fmt(t) << "</text>\n";
    }
    s << "<text x=\"" << ox + pw / 2 << "\" y=\"" << oy + ph + 36 << "\" text-anchor=\"middle\">"
      << escape(x_label) << "</text>\n"
      << "<text transform=\"translate(" << ox - 45 << "," << oy + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(panel.y_label) << "</text>\n";
    // Legend in a white box, drawn after the curves, at the right, on the side (top or bottom)
    // away from where the curves end.
    std::ostringstream legend;
    std::size_t longest = 0;
    double end_sum = 0.0;
    int ends = 0;
    for (const auto& se : panel.series) {
      longest = std::max(longest, se.label.size());
      if (!se.y.empty() && std::isfinite(se.y.back())) {
        end_sum += (se.y.back() - y0) / (y1 - y0);
        ++ends;
      }
    }
    const bool curves_end_high = ends > 0 && end_sum / ends > 0.5;
    const double lh = 16, lw = 44 + 6.6 * static_cast<double>(longest), lx = ox + pw - lw - 8;
    const double box_h = lh * static_cast<double>(panel.series.size()) + 8;
    const double ly0 = curves_end_high ? oy + ph - 8 - box_h : oy + 8;
    legend << "<rect x=\"" << lx << "\" y=\"" << ly0 << "\" width=\"" << lw << "\" height=\""
           << box_h << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n";
    for (std::size_t k = 0; k < panel.series.size(); ++k) {
      const auto& se = panel.series[k];
      const char* color = kColors[k % std::size(kColors)];
      if (se.markers) {
        for (std::size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
          if (std::isfinite(se.x[i]) && std::isfinite(se.y[i])) {
            s << "<circle cx=\"" << sx(se.x[i]) << "\" cy=\"" << sy(se.y[i])
              << "\" r=\"2\" fill=\"" << color << "\" fill-opacity=\"0.6\"/>";
          }
        }
        s << "\n";
      } else {
        s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
        for (std::size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
          if (std::isfinite(se.y[i])) s << sx(se.x[i]) << "," << sy(se.y[i]) << " ";
        }
        s << "\"/>\n";
      }
      const double ly = ly0 + 18 + lh * static_cast<double>(k);
      legend << "<line x1=\"" << lx + 8 << "\" x2=\"" << lx + 28 << "\" y1=\"" << ly - 4
             << "\" y2=\"" << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>"
             << "<text x=\"" << lx + 34 << "\" y=\"" << ly << "\">" << escape(se.label)
             << "</text>\n";
    }
    s << legend.str();
  }
  s << "</svg>\n";
  return s.str();
}

void write_text_file_atomic(const std::string& path, const std::string& content) {
  common::write_file_atomic(path, content);  // fsync'd: a crash leaves the old file or the new
}

}  // namespace pnn::training
