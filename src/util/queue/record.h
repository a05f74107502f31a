// Typed records, the unit of every queue file: one type byte, the data length in 7-bit
// groups (low group first, high bit = more follows), then the data. This is Postfix's
// record layout (rec_put/rec_get), so Postfix's postcat can read Postern queue files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"

namespace postern::queue {

namespace rec {
inline constexpr char kSize = 'C';        // fixed-width sizes/offsets, patched in place
inline constexpr char kTime = 'T';        // arrival time "sec usec"
inline constexpr char kFullName = 'F';
inline constexpr char kInspector = 'I';
inline constexpr char kFilter = 'L';      // content_filter in the envelope
inline constexpr char kFrom = 'S';
inline constexpr char kDone = 'D';        // recipient already delivered
inline constexpr char kRcpt = 'R';        // recipient to deliver
inline constexpr char kOrigRcpt = 'O';
inline constexpr char kWarn = 'W';        // next delay-warning time, fixed width
inline constexpr char kAttr = 'A';        // name=value
inline constexpr char kMesg = 'M';        // start of content
inline constexpr char kCont = 'L';        // content: line continues in the next record
inline constexpr char kNorm = 'N';        // content: end of a line
inline constexpr char kXtra = 'X';        // start of extracted records
inline constexpr char kRrto = 'r';
inline constexpr char kErto = 'e';
inline constexpr char kPrio = 'P';
inline constexpr char kVerp = 'V';
inline constexpr char kRedirect = '>';
inline constexpr char kFlags = 'f';
inline constexpr char kEnd = 'E';         // last record of a complete file
}  // namespace rec

// Postfix's printable name for a record type (postcat's "name: value").
const char* record_type_name(char type);

// Longest record data we accept: a corrupt length field must not allocate gigabytes.
inline constexpr size_t kMaxRecordLength = 64 * 1024 * 1024;

// Appends one encoded record to `out`.
void append_record(std::string& out, char type, std::string_view data);
// Size of the encoded record header for a data length.
size_t record_header_size(size_t data_length);

struct Record {
    char type = 0;
    std::string_view data;  // valid until the next call to RecordReader::next()
    uint64_t offset = 0;    // of the type byte
};

// Where a reader gets bytes: a file descriptor (pread) or a buffer in memory.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    // Reads up to n bytes at `offset`; 0 at end of data.
    virtual Result<size_t> read_at(uint64_t offset, char* buf, size_t n) = 0;
};
std::unique_ptr<ByteSource> memory_source(std::string_view bytes);  // bytes must outlive it
std::unique_ptr<ByteSource> fd_source(int fd);                       // fd must outlive it

enum class ReadError { None, Truncated, Corrupt, Io };

// Reads records one at a time through a window of large reads, so the envelope of a big
// message costs one read and the body is never loaded whole.
class RecordReader {
public:
    explicit RecordReader(std::unique_ptr<ByteSource> source, uint64_t start = 0);
    // The next record; nullopt at a clean end of data. Errors say what and where;
    // error_kind() tells truncation (ends mid-record) from garbage.
    Result<std::optional<Record>> next();
    // The type byte of the next record without consuming it; nullopt at end of data.
    Result<std::optional<char>> peek_type();
    ReadError error_kind() const { return error_kind_; }
    uint64_t offset() const { return pos_; }
    void seek(uint64_t offset);

private:
    // Makes [pos_, pos_+n) available in the window; false at end of data.
    Result<bool> fill(size_t n);
    Error fail(ReadError kind, std::string message);

    std::unique_ptr<ByteSource> source_;
    std::string window_;
    uint64_t window_start_ = 0;
    uint64_t pos_ = 0;
    ReadError error_kind_ = ReadError::None;
};

}  // namespace postern::queue
