#pragma once
// The dashboard's files (daemon/dashboard/ and the vendored chart library), compiled into pnnd by
// cmake/embed_assets.cmake, so an installed pnnd needs no data directory and a request path can
// never reach the file system.
#include <string_view>

namespace pnn::daemon::detail {

struct DashboardAsset {
  std::string_view name;          ///< e.g. "app.js" (served as /static/app.js)
  std::string_view content_type;
  std::string_view body;
};

/// nullptr for a name that is not one of the files.
const DashboardAsset* find_dashboard_asset(std::string_view name);

}  // namespace pnn::daemon::detail
