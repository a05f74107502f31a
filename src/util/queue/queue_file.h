// Queue files: the envelope, the message, and the extracted records of one message, as a
// stream of typed records (util/queue/record.h), in Postfix's order:
//
//   C size record (fixed width, patched when the file is finished)
//   T arrival time, A create_time, F full name, S sender, A attributes, W warn time,
//   per recipient: [A dsn_orig_rcpt] [A notify_flags] [O original] R|D address
//   M  then content: N (end of line) / L (line continues) records
//   X  then extracted records (A, r, e, R, ...)
//   E  end: only a file with E is whole
//
// Durability: a writer creates incoming/ID (mode 0600), appends records in large
// buffers, and commit() = fchmod 0700 + fsync (+ directory fsync). A file without the
// owner-execute bit is still being written (Postfix's convention); 250 may be answered
// only after commit() returns success. Delivered recipients are marked by overwriting
// their R type byte with D in place (one pwrite), synced alone or in a batch.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/queue/queue_layout.h"
#include "util/queue/record.h"

namespace postern::queue {

// Named attributes (Postfix's mail_proto.h names, so tools agree on them).
namespace attr {
inline constexpr std::string_view kCreateTime = "create_time";
inline constexpr std::string_view kEnvid = "envelope_id";
inline constexpr std::string_view kRet = "ret_flags";
inline constexpr std::string_view kEncoding = "encoding";
inline constexpr std::string_view kLogIdent = "log_ident";
inline constexpr std::string_view kRewriteContext = "rewrite_context";
inline constexpr std::string_view kClientName = "log_client_name";
inline constexpr std::string_view kClientAddress = "log_client_address";
inline constexpr std::string_view kClientPort = "log_client_port";
inline constexpr std::string_view kHeloName = "log_helo_name";
inline constexpr std::string_view kProtocol = "log_protocol_name";
inline constexpr std::string_view kOrigin = "log_message_origin";
inline constexpr std::string_view kDsnOrcpt = "dsn_orig_rcpt";
inline constexpr std::string_view kDsnNotify = "notify_flags";
}  // namespace attr

// The queue file mode bits: being written, and complete (Postfix's MAIL_QUEUE_STAT_READY).
inline constexpr mode_t kModeWriting = 0600;
inline constexpr mode_t kModeReady = 0700;

// The C record: fixed-width fields so they can be rewritten in place.
struct SizeInfo {
    long content_size = 0;  // bytes of content records, from after M to X
    long data_offset = 0;   // offset of the first content record
    long rcpt_count = 0;
    long qmgr_opts = 0;
    long content_length = 0;  // bytes of the message as text (lines + newlines)
    long smtputf8 = 0;
};

struct Recipient {
    std::string address;
    std::string original;   // O record; empty when none
    std::string dsn_orcpt;  // "rfc822;user@example" (DSN ORCPT); empty when none
    int dsn_notify = 0;     // DSN NOTIFY bit mask; 0 = not given
    bool done = false;
    uint64_t offset = 0;    // of the R/D type byte, for mark_done()
};

struct Envelope {
    SizeInfo size;
    long arrival_sec = 0;
    long arrival_usec = 0;
    long create_time = 0;
    std::optional<std::string> fullname;
    std::string sender;  // "" is the null sender
    std::string content_filter;
    std::optional<long> warn_time;
    uint64_t warn_offset = 0;  // of the W record's data, for update_warn_time()
    std::vector<std::pair<std::string, std::string>> attributes;  // in file order
    std::vector<Recipient> recipients;
    uint64_t content_offset = 0;  // of the M record

    const std::string* attribute(std::string_view name) const;
};

struct Extracted {
    std::vector<std::pair<char, std::string>> records;  // type, data, in file order
};

// ---- Writing -------------------------------------------------------------------

class QueueFileWriter {
public:
    // Creates a uniquely named file in `queue` (normally incoming) and names it by its
    // queue ID: temporary name, then rename to the ID derived from time and inode.
    static Result<QueueFileWriter> create(const Layout& layout,
                                          std::string_view queue = kIncoming);
    QueueFileWriter(QueueFileWriter&&) = default;
    QueueFileWriter& operator=(QueueFileWriter&&) = default;
    ~QueueFileWriter();

    const std::string& id() const { return id_; }
    const std::string& path() const { return path_; }
    const std::string& queue() const { return queue_; }
    int fd() const { return fd_.get(); }
    long arrival_sec() const { return sec_; }
    long arrival_usec() const { return usec_; }

    // Envelope: sizes, times and recipient offsets are filled in by the writer.
    void write_envelope(const Envelope& env);
    // One message line without its newline; long lines become L...L N records.
    void add_line(std::string_view line);
    void add_extracted(char type, std::string_view data);
    // Writes X (if not yet), E, patches the size record. Nothing is durable yet.
    Status finish();
    // finish() if needed, then mark complete and fsync file and directory.
    Status commit();
    // Removes the file (a message that is rejected or failed mid-way).
    Status abandon();

    // Split long lines in records of at most this many bytes (line_length_limit).
    void set_record_limit(size_t limit) { record_limit_ = limit ? limit : 1; }
    const std::vector<uint64_t>& recipient_offsets() const { return rcpt_offsets_; }

private:
    friend Status commit_many(std::span<QueueFileWriter*> files);
    QueueFileWriter() = default;
    void put(char type, std::string_view data);
    Status flush();
    Status finish_and_mark();

    UniqueFd fd_;
    std::string id_, path_, queue_, dir_;
    std::string buf_;
    uint64_t written_ = 0;  // bytes already on disk (buf_ starts here)
    long sec_ = 0, usec_ = 0;
    SizeInfo size_;
    bool in_content_ = false, in_extracted_ = false, finished_ = false, committed_ = false;
    size_t record_limit_ = 2048;
    std::vector<uint64_t> rcpt_offsets_;
    Status pending_;  // first failed background flush
};

// Group commit: finishes every file, fsyncs each, then each distinct directory once.
// Only after success may all of them be acknowledged; on failure none may.
Status commit_many(std::span<QueueFileWriter*> files);

// ---- Reading ---------------------------------------------------------------------

// Why a read failed: the caller quarantines Corrupt files to corrupt/, retries or skips
// Incomplete ones (still being written, or cut short by a crash before commit).
enum class FileState { Ok, Incomplete, Corrupt, Io };

class QueueFileReader {
public:
    explicit QueueFileReader(std::unique_ptr<ByteSource> source);
    // Reads up to and including the M record: the body is not read.
    Result<Envelope> read_envelope();
    // Next whole content line (continuations joined); nullopt after the last line.
    Result<std::optional<std::string>> next_line();
    // After the content: the extracted records, up to and including E.
    Result<Extracted> read_extracted();
    FileState state() const { return state_; }

private:
    Result<std::optional<Record>> next_record();
    Error corrupt(std::string message);
    Status envelope_record(const Record& r, Envelope& env, Recipient& pending);

    RecordReader reader_;
    FileState state_ = FileState::Ok;
    bool content_done_ = false;
};

// Reads and validates a whole file from memory (fuzzing, tests, postsuper checks).
struct ParsedFile {
    Envelope envelope;
    std::vector<std::string> lines;
    Extracted extracted;
};
Result<ParsedFile> parse_queue_file(std::string_view bytes, FileState* state = nullptr);

// True when the file has been committed (owner-execute bit set).
bool is_complete_mode(mode_t mode);

// An open queue file and whether its writer committed it. qmgr skips (and, once old,
// postsuper removes) files that are not complete: they were never acknowledged.
struct OpenedQueueFile {
    UniqueFd fd;
    bool complete = false;
    uint64_t size = 0;
};
Result<OpenedQueueFile> open_queue_file(const std::string& path, bool writable);

// ---- Updating in place -------------------------------------------------------------

// Overwrites the R record type at `offset` with D; with sync, fsyncs afterwards.
Status mark_done(int fd, uint64_t offset, bool sync = true);
// Marks several recipients, then one fsync for them all.
Status mark_done_many(int fd, std::span<const uint64_t> offsets);
// Rewrites the W record (15-character field) at `data_offset`.
Status update_warn_time(int fd, uint64_t data_offset, long when, bool sync = true);

}  // namespace postern::queue
