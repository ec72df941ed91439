#pragma once
// In-process USB device models for the libusb transport tests. A `MockUsbBus` owns a umockdev
// testbed; every device it carries appears in the emulated sysfs (descriptors, bus number,
// address, speed) and gets a usbdevfs node whose ioctls — the ones libusb's Linux backend
// issues: SUBMITURB, REAPURB(NDELAY), DISCARDURB, CLAIM/RELEASE, CLEAR_HALT, ... — are answered
// by the model (libusb's tests/umockdev.c is the reference for the plumbing).
//
// Threads: umockdev calls the model on its own worker thread; the model's state is guarded by
// one mutex, and the test thread reads it through the locked accessors below.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

typedef struct _UMockdevTestbed UMockdevTestbed;
typedef struct _UMockdevIoctlBase UMockdevIoctlBase;
typedef struct _UMockdevIoctlClient UMockdevIoctlClient;
typedef struct _UMockdevIoctlData UMockdevIoctlData;

namespace pnn::test_usb {

using Clock = std::chrono::steady_clock;

struct MockEndpoint {
  std::uint8_t address = 0;     ///< bit 7 set: IN
  std::uint8_t attributes = 2;  ///< 2 bulk, 3 interrupt
  std::uint16_t max_packet = 512;
};

struct MockInterface {
  std::uint8_t number = 0;
  std::uint8_t interface_class = 0xFF;
  std::uint8_t interface_subclass = 0;
  std::uint8_t interface_protocol = 0;
  std::vector<MockEndpoint> endpoints;
};

struct MockDeviceSpec {
  std::uint16_t vid = 0;
  std::uint16_t pid = 0;
  std::string manufacturer = "pnn-test";
  std::string product = "mock";
  std::string serial;  ///< empty: no iSerialNumber
  std::vector<MockInterface> interfaces;
  int speed_mbps = 480;  ///< sysfs "speed": 12 full speed, 480 high speed
};

/// Device descriptor (18 bytes) and configuration descriptor (with interfaces and endpoints).
std::vector<std::uint8_t> device_descriptor(const MockDeviceSpec& spec);
std::vector<std::uint8_t> config_descriptor(const MockDeviceSpec& spec);

/// What a model does with a bulk OUT transfer.
enum class OutResult { kAccept, kNak, kStall };

/// A control request's setup packet (data stage separate).
struct Setup {
  std::uint8_t request_type = 0;
  std::uint8_t request = 0;
  std::uint16_t value = 0;
  std::uint16_t index = 0;
  std::uint16_t length = 0;
};

/// The usbdevfs side of one emulated device. Subclasses model its function; every hook runs
/// with the mutex held, on umockdev's thread.
class MockUsbDevice {
 public:
  explicit MockUsbDevice(MockDeviceSpec spec);
  virtual ~MockUsbDevice();
  MockUsbDevice(const MockUsbDevice&) = delete;
  MockUsbDevice& operator=(const MockUsbDevice&) = delete;

  const MockDeviceSpec& spec() const noexcept { return spec_; }

  /// Everything the host did that a test may assert, in order: "claim 1", "release 1",
  /// "clear_halt 0x02", plus what subclasses log (class requests, messages).
  std::vector<std::string> events() const;
  void clear_events();
  /// Bulk OUT payloads received, one entry per transfer.
  std::vector<std::vector<std::uint8_t>> out_transfers() const;
  /// IN URBs currently waiting for data.
  std::size_t pending_in_urbs() const;
  /// (endpoint, buffer length) of every IN URB submitted, in order.
  std::vector<std::pair<std::uint8_t, int>> in_urb_lengths() const;

  /// Called by the bus; while unplugged every ioctl fails with ENODEV.
  void set_connected(bool connected);

  /// The umockdev signal handler (C linkage target).
  bool handle_ioctl(UMockdevIoctlClient* client);

 protected:
  /// A class or vendor control request (standard GET_DESCRIPTOR etc. are answered here).
  /// Return the IN data stage, or nullopt to stall.
  virtual std::optional<std::vector<std::uint8_t>> on_control(const Setup& setup,
                                                              std::span<const std::uint8_t> out);
  virtual OutResult on_bulk_out(std::uint8_t endpoint, std::span<const std::uint8_t> data) = 0;
  virtual void on_clear_halt(std::uint8_t endpoint) { (void)endpoint; }
  /// A pending IN URB on `endpoint` is about to be satisfied; gives subclasses a chance to
  /// produce data lazily (e.g. after a latency). Default: nothing.
  virtual void on_in_poll(std::uint8_t endpoint, Clock::time_point now) {
    (void)endpoint;
    (void)now;
  }

  /// Queues one device-side IN transfer (ends with a short packet) on `endpoint`.
  void queue_in(std::uint8_t endpoint, std::vector<std::uint8_t> bytes,
                Clock::time_point ready_at = {});
  /// Drops queued IN data on `endpoint`.
  void drop_in(std::uint8_t endpoint);
  std::size_t queued_in(std::uint8_t endpoint) const;
  void log(std::string event) { events_.push_back(std::move(event)); }
  std::uint16_t max_packet(std::uint8_t endpoint) const;

  mutable std::mutex mutex_;

 private:
  struct Urb {
    UMockdevIoctlData* data = nullptr;  // our reference to the resolved usbdevfs_urb
    UMockdevIoctlClient* client = nullptr;
    int status = 0;
  };
  struct InChunk {
    std::vector<std::uint8_t> bytes;
    std::size_t offset = 0;
    Clock::time_point ready_at;
  };

  bool submit(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  bool reap(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  bool discard(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  void complete_control(Urb& urb);
  std::optional<std::vector<std::uint8_t>> standard_request(const Setup& setup);
  bool fill_in(Urb& urb, Clock::time_point now);
  void log_in_length(std::uint8_t endpoint, int length);

  MockDeviceSpec spec_;
  bool connected_ = true;
  std::vector<std::string> events_;
  std::vector<std::vector<std::uint8_t>> out_transfers_;
  std::vector<std::pair<std::uint8_t, int>> in_urb_lengths_;
  std::deque<Urb> completed_;
  std::deque<Urb> pending_in_;
  std::deque<Urb> pending_out_;  // NAKed OUT transfers, until discarded
  std::vector<std::pair<std::uint8_t, std::deque<InChunk>>> in_queues_;
};

/// A umockdev testbed with USB devices plugged into it.
class MockUsbBus {
 public:
  MockUsbBus();
  ~MockUsbBus();
  MockUsbBus(const MockUsbBus&) = delete;
  MockUsbBus& operator=(const MockUsbBus&) = delete;

  /// True when the preload library redirects /sys and /dev (checked after the testbed exists).
  static bool in_mock_environment();

  /// Plugs `device` in at bus `bus`, address `address` (sysfs, device node, add uevent).
  void plug(std::shared_ptr<MockUsbDevice> device, int bus, int address);
  /// Unplugs it: ioctls fail with ENODEV from now on, a remove uevent is sent and the sysfs
  /// entry removed.
  void unplug(const std::shared_ptr<MockUsbDevice>& device);

 private:
  struct Plugged {
    std::shared_ptr<MockUsbDevice> device;
    std::string syspath;
    std::string devnode;
    UMockdevIoctlBase* handler = nullptr;
  };
  UMockdevTestbed* testbed_ = nullptr;
  std::vector<Plugged> plugged_;
  std::vector<Plugged> retired_;  // handlers of unplugged devices, kept until the end
};

}  // namespace pnn::test_usb
