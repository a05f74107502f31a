// The one request/response encoding between Postern daemons: a record is a list of
// attributes, each "name=value\n", ended by an empty line. Names are [a-z0-9_]+; bytes in
// a value that would break the framing (control characters, '%', DEL) are written as
// %XX, so any byte string round-trips. One encoder, one incremental decoder with hard
// limits; both are fuzzed (tests/fuzz/fuzz_attr.cc).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::ipc {

struct Attr {
    std::string name;
    std::string value;
};

// One record: attributes in the order they were added or read. Names may repeat (a
// recipient list is several "rcpt" attributes).
class AttrRecord {
public:
    AttrRecord& add(std::string_view name, std::string_view value);
    AttrRecord& add_long(std::string_view name, long value);

    const std::vector<Attr>& attrs() const { return attrs_; }
    bool empty() const { return attrs_.empty(); }
    // First value of `name`, if any.
    std::optional<std::string_view> find(std::string_view name) const;

private:
    friend class AttrDecoder;
    std::vector<Attr> attrs_;
};

// Appends the wire form of `record` (attributes and the terminating empty line) to `out`.
void encode_record(const AttrRecord& record, std::string& out);
std::string encode_record(const AttrRecord& record);

struct AttrLimits {
    size_t max_name = 64;
    size_t max_value = 1 << 20;    // one value (a header, a long address list)
    size_t max_attrs = 10000;      // attributes in one record
    size_t max_record = 4 << 20;   // encoded bytes in one record
};

// Incremental decoder: feed() whatever arrived (any split, even one byte at a time);
// complete records queue up for next(). After an error the decoder stays failed: the
// peer is broken and the connection should be closed.
class AttrDecoder {
public:
    explicit AttrDecoder(AttrLimits limits = {}) : limits_(limits) {}

    Status feed(std::string_view data);
    std::optional<AttrRecord> next();
    bool failed() const { return failed_; }
    // True when a record has started but not ended (for "unexpected EOF" reporting).
    bool mid_record() const { return !line_.empty() || !current_.attrs_.empty(); }

private:
    Status take_line(std::string_view line);
    Status fail(std::string message);

    AttrLimits limits_;
    std::string line_;
    AttrRecord current_;
    size_t record_bytes_ = 0;
    std::vector<AttrRecord> ready_;
    size_t ready_pos_ = 0;
    bool failed_ = false;
    std::string error_;
};

// Reads the fields of one record by name and checks that nothing is left over, so every
// message type rejects unknown or missing fields in one place:
//   RecordReader r(rec); auto id = r.take("queue_id"); auto n = r.take_long("nrcpt");
//   auto rcpts = r.take_all("rcpt"); if (Status st = r.finish(); !st) ...
class RecordReader {
public:
    explicit RecordReader(const AttrRecord& record);

    // Required single value; records an error when missing or repeated.
    std::string take(std::string_view name);
    // Optional single value.
    std::optional<std::string> take_optional(std::string_view name);
    long take_long(std::string_view name);
    std::optional<long> take_long_optional(std::string_view name);
    // All values of a repeatable field (possibly none).
    std::vector<std::string> take_all(std::string_view name);
    // Ok when every field was taken exactly once and all conversions worked.
    Status finish() const;

private:
    const AttrRecord& record_;
    std::vector<bool> used_;
    std::string error_;
};

}  // namespace postern::ipc
