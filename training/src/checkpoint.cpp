#include "pnn/training/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <utility>

#include "pnn/common/atomic_write.hpp"
#include "pnn/common/bytes.hpp"
#include "pnn/common/hex.hpp"

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

// Layout constants; docs/checkpoint-format.md is the specification.
constexpr std::string_view kMagic{"PNNCKPT\0", 8};
constexpr std::size_t kHeaderBytes = 8 + 4 + 8;    // magic, version, body length
constexpr std::size_t kTrailerBytes = 4;           // CRC-32
constexpr std::size_t kRecordHeaderBytes = 4 + 8;  // type, payload length

enum RecordType : std::uint32_t {
  kRecordRun = 1,
  kRecordLayer = 2,
  kRecordOptimizer = 3,
  kRecordMetadata = 4,
  kRecordRule = 5,
};

// Checkpoints hold parameter vectors of at most millions of entries; refusing files beyond this
// keeps a wrong path (a disk image, say) from being read into memory whole.
constexpr std::uintmax_t kMaxFileBytes = std::uintmax_t{4} << 30;

std::uint32_t crc32_of(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib's crc32 takes a uInt length: feed large inputs in pieces.
  while (!bytes.empty()) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), UINT_MAX);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<std::uint32_t>(crc);
}

// ---------------------------------------------------------------------------------------------
// Encoding

// The format's compound fields over the common byte writer: u32-length-prefixed strings and
// vectors, and records whose u64 length is patched in when they end.
class Writer {
 public:
  void u32(std::uint32_t v) { w_.u32(v); }
  void u64(std::uint64_t v) { w_.u64(v); }

  void str(const std::string& s, const char* field) {
    w_.u32(checked_length(s.size(), field));
    w_.bytes(s.data(), s.size());
  }

  void vec(const Vector& v, const char* field) {
    w_.u32(checked_length(static_cast<std::size_t>(v.size()), field));
    w_.f64_array({v.data(), static_cast<std::size_t>(v.size())});
  }

  /// Starts a record; returns the offset of its length field for `end_record`.
  std::size_t begin_record(RecordType type) {
    w_.u32(type);
    const std::size_t at = out_.size();
    w_.u64(0);
    return at;
  }

  void end_record(std::size_t length_at) {
    w_.put_at<std::uint64_t>(length_at, out_.size() - length_at - 8);
  }

  /// Overwrites the u64 at `at` (the header's body length).
  void patch_u64(std::size_t at, std::uint64_t v) { w_.put_at(at, v); }

  std::string& bytes() { return out_; }

 private:
  static std::uint32_t checked_length(std::size_t n, const char* field) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
      throw CheckpointError(std::string("cannot encode checkpoint: ") + field + " has " +
                            std::to_string(n) + " entries, the format allows at most 2^32-1");
    }
    return static_cast<std::uint32_t>(n);
  }

  std::string out_;
  common::ByteWriter<std::string> w_{out_};
};

// The optimizer and rule records: kind, step, slots.
void encode_state(Writer& w, RecordType type, const OptimizerState& state, const std::string& what) {
  const std::size_t at = w.begin_record(type);
  w.str(state.kind, (what + " kind").c_str());
  w.u64(static_cast<std::uint64_t>(state.step));
  if (state.slots.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw CheckpointError("cannot encode checkpoint: too many " + what + " slots");
  }
  w.u32(static_cast<std::uint32_t>(state.slots.size()));
  for (const Vector& slot : state.slots) w.vec(slot, (what + " slot").c_str());
  w.end_record(at);
}

// ---------------------------------------------------------------------------------------------
// Decoding

[[noreturn]] void corrupt(const std::string& source, const std::string& what) {
  throw CheckpointError("checkpoint " + source + ": " + what);
}

// One record's payload over the bounds-checked common reader: every length read from the file
// is checked against the bytes that remain before anything is allocated, and a read that does
// not fit throws, naming the file, the record and the field.
class Reader {
 public:
  Reader(std::string_view data, const std::string& source, std::string context)
      : r_(data), source_(source), context_(std::move(context)) {}

  std::uint32_t u32(const char* field) { return checked(r_.u32(field)); }
  std::uint64_t u64(const char* field) { return checked(r_.u64(field)); }

  std::string str(const char* field) {
    const std::uint32_t n = u32(field);
    return std::string(checked(r_.text(n, field)));
  }

  Vector vec(const char* field) {
    const std::uint32_t n = u32(field);
    Vector v;
    r_.f64_array(n, v, field);
    return checked(std::move(v));
  }

  std::size_t remaining() const { return r_.remaining(); }

  void expect_end() {
    if (remaining() != 0) {
      fail(std::to_string(remaining()) + " unexpected bytes at the end of the record");
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    corrupt(source_, context_ + ": " + what);
  }

 private:
  template <class T>
  T checked(T value) const {
    if (!r_.ok()) fail(r_.error() + " (corrupt length)");
    return value;
  }

  common::ByteReader r_;
  const std::string& source_;
  std::string context_;
};

OptimizerState decode_state(Reader& r) {
  OptimizerState state;
  state.kind = r.str("kind");
  state.step = static_cast<std::int64_t>(r.u64("step"));
  const std::uint32_t slots = r.u32("slot count");
  // Each slot takes at least its 4-byte count: bound the reservation by the payload.
  if (slots > r.remaining() / 4) {
    r.fail("slot count " + std::to_string(slots) + " exceeds the record (corrupt length)");
  }
  state.slots.reserve(slots);
  for (std::uint32_t i = 0; i < slots; ++i) state.slots.push_back(r.vec("slot"));
  r.expect_end();
  return state;
}

// A field of the header or of a record header, at an offset the caller has checked.
template <class T>
T read_le(std::string_view bytes, std::size_t at) {
  return common::load_le<T>(bytes.data() + at);
}

// ---------------------------------------------------------------------------------------------
// File I/O

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

std::string encode_checkpoint(const Checkpoint& c) {
  Writer w;
  w.bytes().append(kMagic);
  w.u32(kCheckpointFormatVersion);
  w.u64(0);  // body length, patched below

  std::size_t at = w.begin_record(kRecordRun);
  w.u32(static_cast<std::uint32_t>(c.epoch));
  w.u64(c.seed);
  w.end_record(at);

  for (const LayerState& layer : c.layers) {
    at = w.begin_record(kRecordLayer);
    w.str(layer.kind, "layer kind");
    w.str(layer.device_serial, "layer device_serial");
    w.vec(layer.theta, "layer theta");
    w.vec(layer.twin_phi, "layer twin_phi");
    w.end_record(at);
  }

  encode_state(w, kRecordOptimizer, c.optimizer, "optimizer");
  if (!c.rule.kind.empty()) encode_state(w, kRecordRule, c.rule, "rule");

  for (const auto& [key, value] : c.metadata) {
    at = w.begin_record(kRecordMetadata);
    w.str(key, "metadata key");
    w.str(value, "metadata value");
    w.end_record(at);
  }

  std::string& out = w.bytes();
  w.patch_u64(12, out.size() - kHeaderBytes);
  const std::uint32_t crc = crc32_of(out);
  w.u32(crc);
  return std::move(out);
}

Checkpoint decode_checkpoint(std::string_view bytes, const std::string& source) {
  const std::size_t size = bytes.size();
  const std::size_t magic_checked = std::min(size, kMagic.size());
  if (bytes.substr(0, magic_checked) != kMagic.substr(0, magic_checked)) {
    corrupt(source, "not a pnn checkpoint file (wrong magic bytes)");
  }
  if (size < kHeaderBytes + kTrailerBytes) {
    corrupt(source, "truncated: " + std::to_string(size) + " bytes, shorter than the " +
                        std::to_string(kHeaderBytes + kTrailerBytes) +
                        "-byte minimum (header and CRC)");
  }
  const auto version = read_le<std::uint32_t>(bytes, 8);
  if (version == 0 || version > kCheckpointFormatVersion) {
    corrupt(source, "format version " + std::to_string(version) +
                        " is not supported; this build reads versions 1.." +
                        std::to_string(kCheckpointFormatVersion) +
                        (version > kCheckpointFormatVersion
                             ? " (the file was written by a newer pnn-hil: upgrade to load it)"
                             : ""));
  }
  const std::uint64_t body = read_le<std::uint64_t>(bytes, 12);
  const std::size_t available = size - kHeaderBytes - kTrailerBytes;
  if (body > available) {
    corrupt(source, "truncated: the header declares " + std::to_string(body) +
                        " body bytes but the file holds " + std::to_string(available));
  }
  if (body < available) {
    corrupt(source, std::to_string(available - body) +
                        " unexpected bytes after the declared end of the checkpoint");
  }
  const std::string_view content = bytes.substr(0, kHeaderBytes + body);
  const auto stored = read_le<std::uint32_t>(bytes, kHeaderBytes + body);
  const std::uint32_t computed = crc32_of(content);
  if (stored != computed) {
    corrupt(source, "CRC-32 mismatch (stored " + common::hex_u32(stored) + ", computed " + common::hex_u32(computed) +
                        "): the file is corrupt");
  }

  Checkpoint c;
  bool have_run = false;
  bool have_optimizer = false;
  bool have_rule = false;
  std::size_t pos = kHeaderBytes;
  const std::size_t end = kHeaderBytes + body;
  for (int index = 0; pos < end; ++index) {
    const std::string where = "record " + std::to_string(index) + " at byte " + std::to_string(pos);
    if (end - pos < kRecordHeaderBytes) {
      corrupt(source, where + ": truncated record header");
    }
    const auto type = read_le<std::uint32_t>(bytes, pos);
    const std::uint64_t length = read_le<std::uint64_t>(bytes, pos + 4);
    pos += kRecordHeaderBytes;
    if (length > end - pos) {
      corrupt(source, where + ": length " + std::to_string(length) + " exceeds the " +
                          std::to_string(end - pos) + " bytes left in the body");
    }
    const std::string_view payload = bytes.substr(pos, static_cast<std::size_t>(length));
    pos += static_cast<std::size_t>(length);

    switch (type) {
      case kRecordRun: {
        Reader r(payload, source, where + " (run)");
        if (have_run) r.fail("duplicate run record");
        c.epoch = static_cast<int>(static_cast<std::int32_t>(r.u32("epoch")));
        c.seed = r.u64("seed");
        r.expect_end();
        have_run = true;
        break;
      }
      case kRecordLayer: {
        Reader r(payload, source, where + " (layer " + std::to_string(c.layers.size()) + ")");
        LayerState layer;
        layer.kind = r.str("kind");
        layer.device_serial = r.str("device_serial");
        layer.theta = r.vec("theta");
        layer.twin_phi = r.vec("twin_phi");
        r.expect_end();
        c.layers.push_back(std::move(layer));
        break;
      }
      case kRecordOptimizer: {
        Reader r(payload, source, where + " (optimizer)");
        if (have_optimizer) r.fail("duplicate optimizer record");
        c.optimizer = decode_state(r);
        have_optimizer = true;
        break;
      }
      case kRecordRule: {
        Reader r(payload, source, where + " (rule)");
        if (have_rule) r.fail("duplicate rule record");
        c.rule = decode_state(r);
        if (c.rule.kind.empty()) r.fail("a rule record names no rule");
        have_rule = true;
        break;
      }
      case kRecordMetadata: {
        Reader r(payload, source, where + " (metadata)");
        std::string key = r.str("key");
        std::string value = r.str("value");
        r.expect_end();
        if (!c.metadata.emplace(std::move(key), std::move(value)).second) {
          r.fail("duplicate metadata key");
        }
        break;
      }
      default:
        // Unknown record types within a supported version are additions that older readers may
        // skip (docs/checkpoint-format.md); incompatible changes bump the version instead.
        break;
    }
  }
  if (!have_run) corrupt(source, "the run record (epoch, seed) is missing");
  if (!have_optimizer) corrupt(source, "the optimizer record is missing");
  return c;
}

void save_checkpoint(const Checkpoint& c, const fs::path& path, const SaveFaults& faults) {
  const std::string where = "cannot save checkpoint " + path.string();
  if (path.empty() || !path.has_filename()) {
    throw CheckpointError(where + ": the path names no file");
  }
  const std::string bytes = encode_checkpoint(c);

  using Step = common::AtomicWriteError::Step;
  try {
    common::write_file_atomic(path, bytes,
                              {.create_directories = false,
                               .fail_after_bytes = faults.fail_after_bytes});
  } catch (const common::AtomicWriteError& e) {
    const std::string tmp = e.temp_path().string();
    const std::string reason = errno_text(e.os_error());
    const std::string dir = (path.has_parent_path() ? path.parent_path() : fs::path(".")).string();
    switch (e.step()) {
      case Step::kCreateDirectories:
      case Step::kCreateTemp:
        throw CheckpointError(where + ": cannot create temporary file " + tmp + ": " + reason);
      case Step::kWrite:
        if (e.injected()) {
          throw CheckpointError(where + ": write failed after " +
                                std::to_string(e.bytes_written()) +
                                " bytes (injected by SaveFaults::fail_after_bytes)");
        }
        throw CheckpointError(where + ": write failed: " + reason);
      case Step::kSyncFile:
        throw CheckpointError(where + ": fsync failed: " + reason);
      case Step::kCloseFile:
        throw CheckpointError(where + ": close failed: " + reason);
      case Step::kRename:
        throw CheckpointError(where + ": cannot rename " + tmp + " over it: " + reason);
      case Step::kOpenDirectory:
        throw CheckpointError(where + ": saved, but cannot open directory " + dir +
                              " to make the rename durable: " + reason);
      case Step::kSyncDirectory:
        throw CheckpointError(where + ": saved, but fsync of directory " + dir +
                              " failed, so the rename may not survive a power loss: " + reason);
    }
    throw CheckpointError(where + ": " + e.what());
  }
}

Checkpoint load_checkpoint(const fs::path& path) {
  const std::string source = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) corrupt(source, "file does not exist");
    corrupt(source, "cannot open: " + errno_text(err));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) corrupt(source, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) corrupt(source, "not a regular file");
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxFileBytes) {
    corrupt(source, "file is " + std::to_string(st.st_size) +
                        " bytes, larger than any checkpoint (wrong file?)");
  }
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      corrupt(source, "read failed: " + errno_text(errno));
    }
    if (n == 0) break;  // the file shrank while reading: decode reports it as truncated
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return decode_checkpoint(bytes, source);
}

}  // namespace pnn::training
