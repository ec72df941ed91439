#include "call.hpp"

namespace pnn::daemon::detail {

void set_status(v1::Reply& reply, v1::StatusCode code, const std::string& message,
                const std::string& origin) {
  auto* s = reply.mutable_status();
  s->set_code(code);
  s->set_message(message);
  s->set_origin(origin);
}

bool is_write(v1::Request::BodyCase body) {
  switch (body) {
    case v1::Request::kLifecycle:
    case v1::Request::kAcquire:
    case v1::Request::kRenew:
    case v1::Request::kRelease:
    case v1::Request::kForward:
    case v1::Request::kCalibrate:
    case v1::Request::kFitTwin:
    case v1::Request::kUseTwin:
    case v1::Request::kSubmitJob:
    case v1::Request::kCancelJob:
      return true;
    default:
      return false;
  }
}

const char* rpc_name(v1::Request::BodyCase body) {
  switch (body) {
    case v1::Request::kHello: return "Hello";
    case v1::Request::kListDevices: return "ListDevices";
    case v1::Request::kDescribe: return "Describe";
    case v1::Request::kLifecycle: return "Lifecycle";
    case v1::Request::kAcquire: return "Acquire";
    case v1::Request::kRenew: return "Renew";
    case v1::Request::kRelease: return "Release";
    case v1::Request::kForward: return "Forward";
    case v1::Request::kTwinForward: return "TwinForward";
    case v1::Request::kTwinVjp: return "TwinVjp";
    case v1::Request::kCalibrate: return "Calibrate";
    case v1::Request::kSubmitJob: return "SubmitJob";
    case v1::Request::kJobStatus: return "JobStatus";
    case v1::Request::kCancelJob: return "CancelJob";
    case v1::Request::kListRuns: return "ListRuns";
    case v1::Request::kGetRun: return "GetRun";
    case v1::Request::kSnapshot: return "Snapshot";
    case v1::Request::kFitTwin: return "FitTwin";
    case v1::Request::kListTwins: return "ListTwins";
    case v1::Request::kGetTwin: return "GetTwin";
    case v1::Request::kUseTwin: return "UseTwin";
    case v1::Request::BODY_NOT_SET: return "(none)";
  }
  return "?";
}

}  // namespace pnn::daemon::detail
