// Writing queue files, group commit, and in-place updates of finished recipients.
#include "util/queue/queue_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <set>

#include "util/base/strings.h"
#include "util/queue/queue_id.h"

namespace postern::queue {
namespace {

constexpr size_t kFlushAt = 1024 * 1024;
// The size record is the first record; its data always fits one length byte (< 128).
constexpr uint64_t kSizeDataOffset = 2;

Error errno_error(const char* what, const std::string& path) {
    return make_error(strprintf("%s %s: %s", what, path.c_str(), strerror(errno)));
}

std::string format_size(const SizeInfo& s) {
    return strprintf("%15ld %15ld %15ld %15ld %15ld %15ld", s.content_size, s.data_offset,
                     s.rcpt_count, s.qmgr_opts, s.content_length, s.smtputf8);
}

Status write_all_at(int fd, std::string_view data, uint64_t offset, const std::string& path) {
    while (!data.empty()) {
        ssize_t n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("write", path);
        data.remove_prefix(static_cast<size_t>(n));
        offset += static_cast<uint64_t>(n);
    }
    return {};
}

Status sync_fd(int fd, const std::string& path) {
    if (fsync(fd) != 0) return errno_error("fsync", path);
    return {};
}

Status sync_directory(const std::string& dir) {
    UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open directory", dir);
    return sync_fd(fd.get(), dir);
}

// Moves the temporary file to its ID without ever replacing another file.
int rename_noreplace(const char* from, const char* to) {
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    if (link(from, to) != 0) return -1;  // file systems without RENAME_NOREPLACE
    return unlink(from);
}

}  // namespace

const std::string* Envelope::attribute(std::string_view name) const {
    for (const auto& [n, v] : attributes)
        if (n == name) return &v;
    return nullptr;
}

Result<QueueFileWriter> QueueFileWriter::create(const Layout& layout, std::string_view queue) {
    if (!queue_name_ok(queue)) return make_error("bad queue name: " + std::string(queue));
    QueueFileWriter w;
    w.queue_ = queue;
    std::string qdir = layout.queue_directory() + "/" + std::string(queue);
    std::string temp;
    for (int tries = 0;; ++tries) {
        struct timeval tv;
        gettimeofday(&tv, nullptr);
        temp = strprintf("%s/%ld.%ld", qdir.c_str(), static_cast<long>(tv.tv_usec),
                         static_cast<long>(getpid()));
        w.fd_.reset(open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kModeWriting));
        if (w.fd_) break;
        if (errno != EEXIST || tries > 1000) return errno_error("create file", temp);
    }
    struct stat st;
    if (fstat(w.fd_.get(), &st) != 0) return errno_error("fstat", temp);
    for (int tries = 0;; ++tries) {
        struct timeval tv;
        gettimeofday(&tv, nullptr);
        w.sec_ = tv.tv_sec;
        w.usec_ = tv.tv_usec;
        w.id_ = layout.long_ids() ? make_long_id(tv.tv_sec, tv.tv_usec, st.st_ino)
                                  : make_short_id(tv.tv_usec, st.st_ino);
        w.path_ = layout.path(queue, w.id_);
        if (rename_noreplace(temp.c_str(), w.path_.c_str()) == 0) break;
        int saved = errno;
        if (saved == ENOENT && make_parent_dirs(w.path_).ok() && tries < 3) continue;
        if (saved != EEXIST || tries > 1000) {
            unlink(temp.c_str());
            errno = saved;
            return errno_error(("rename " + temp + " to").c_str(), w.path_);
        }
    }
    w.dir_ = w.path_.substr(0, w.path_.rfind('/'));
    return w;
}

QueueFileWriter::~QueueFileWriter() {
    // A file that was never committed was never acknowledged: nobody waits for it.
    if (fd_ && !committed_) unlink(path_.c_str());
}

void QueueFileWriter::put(char type, std::string_view data) {
    append_record(buf_, type, data);
    if (buf_.size() >= kFlushAt) {
        Status s = flush();
        if (!s && pending_.ok()) pending_ = s;  // reported by finish()/commit()
    }
}

Status QueueFileWriter::flush() {
    if (buf_.empty()) return {};
    Status s = write_all_at(fd_.get(), buf_, written_, path_);
    if (!s) return s;
    written_ += buf_.size();
    buf_.clear();
    return {};
}

void QueueFileWriter::write_envelope(const Envelope& env) {
    size_.smtputf8 = env.size.smtputf8;
    put(rec::kSize, format_size(size_));
    put(rec::kTime, strprintf("%ld %ld", sec_, usec_));
    put(rec::kAttr, strprintf("%s=%ld", attr::kCreateTime.data(), sec_));
    if (env.fullname) put(rec::kFullName, *env.fullname);
    put(rec::kFrom, env.sender);
    if (!env.content_filter.empty()) put(rec::kFilter, env.content_filter);
    for (const auto& [name, value] : env.attributes) put(rec::kAttr, name + "=" + value);
    if (env.warn_time) put(rec::kWarn, strprintf("%15ld", *env.warn_time));
    for (const Recipient& r : env.recipients) {
        if (!r.dsn_orcpt.empty()) put(rec::kAttr, std::string(attr::kDsnOrcpt) + "=" + r.dsn_orcpt);
        if (r.dsn_notify) put(rec::kAttr, strprintf("%s=%d", attr::kDsnNotify.data(), r.dsn_notify));
        if (!r.original.empty()) put(rec::kOrigRcpt, r.original);
        rcpt_offsets_.push_back(written_ + buf_.size());
        put(r.done ? rec::kDone : rec::kRcpt, r.address);
    }
    size_.rcpt_count = static_cast<long>(env.recipients.size());
}

void QueueFileWriter::add_line(std::string_view line) {
    if (!in_content_) {
        put(rec::kMesg, "");
        size_.data_offset = static_cast<long>(written_ + buf_.size());
        in_content_ = true;
    }
    size_.content_length += static_cast<long>(line.size() + 1);
    while (line.size() > record_limit_) {
        put(rec::kCont, line.substr(0, record_limit_));
        line.remove_prefix(record_limit_);
    }
    put(rec::kNorm, line);
}

void QueueFileWriter::add_extracted(char type, std::string_view data) {
    if (!in_extracted_) {
        if (!in_content_) {
            put(rec::kMesg, "");
            size_.data_offset = static_cast<long>(written_ + buf_.size());
            in_content_ = true;
        }
        size_.content_size = static_cast<long>(written_ + buf_.size()) - size_.data_offset;
        put(rec::kXtra, "");
        in_extracted_ = true;
    }
    put(type, data);
}

Status QueueFileWriter::finish() {
    if (finished_) return {};
    if (!fd_) return make_error("queue file is closed");
    if (!pending_) return pending_;
    if (!in_extracted_) {
        add_extracted(rec::kEnd, "");
    } else {
        put(rec::kEnd, "");
    }
    Status s = flush();
    if (!s) return s;
    s = write_all_at(fd_.get(), format_size(size_), kSizeDataOffset, path_);
    if (!s) return s;
    finished_ = true;
    return {};
}

Status QueueFileWriter::finish_and_mark() {
    Status s = finish();
    if (!s) return s;
    // The mode change is part of the inode that the following fsync makes durable.
    if (fchmod(fd_.get(), kModeReady) != 0) return errno_error("change mode of", path_);
    return {};
}

Status QueueFileWriter::commit() {
    QueueFileWriter* self = this;
    return commit_many(std::span<QueueFileWriter*>(&self, 1));
}

Status QueueFileWriter::abandon() {
    if (!fd_) return {};
    fd_.reset();
    if (unlink(path_.c_str()) != 0 && errno != ENOENT) return errno_error("remove", path_);
    return {};
}

Status commit_many(std::span<QueueFileWriter*> files) {
    std::set<std::string> dirs;
    for (QueueFileWriter* w : files) {
        Status s = w->finish_and_mark();
        if (!s) return s;
    }
    // Start writeback of every file at once so the disk sees one batch of writes; the
    // fsyncs below then mostly wait for journal commits, not for data one file at a time.
    if (files.size() > 1)
        for (QueueFileWriter* w : files)
            sync_file_range(w->fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    for (QueueFileWriter* w : files) {
        Status s = sync_fd(w->fd_.get(), w->path_);
        if (!s) return s;
        dirs.insert(w->dir_);
    }
    // The directory entries were created before the data; one sync per directory makes
    // every name in the batch durable.
    for (const std::string& dir : dirs) {
        Status s = sync_directory(dir);
        if (!s) return s;
    }
    for (QueueFileWriter* w : files) w->committed_ = true;
    return {};
}

bool is_complete_mode(mode_t mode) { return (mode & S_IXUSR) != 0; }

Result<OpenedQueueFile> open_queue_file(const std::string& path, bool writable) {
    OpenedQueueFile out;
    // O_NOFOLLOW: a queue entry is a regular file; a planted link is not followed.
    out.fd.reset(open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW));
    if (!out.fd) return errno_error("open", path);
    struct stat st;
    if (fstat(out.fd.get(), &st) != 0) return errno_error("fstat", path);
    if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
    out.complete = is_complete_mode(st.st_mode);
    out.size = static_cast<uint64_t>(st.st_size);
    return out;
}

Status mark_done(int fd, uint64_t offset, bool sync) {
    char done = rec::kDone;
    if (pwrite(fd, &done, 1, static_cast<off_t>(offset)) != 1)
        return make_error(strprintf("mark recipient done at offset %lu: %s",
                                    static_cast<unsigned long>(offset), strerror(errno)));
    if (sync && fsync(fd) != 0) return make_error(std::string("fsync: ") + strerror(errno));
    return {};
}

Status mark_done_many(int fd, std::span<const uint64_t> offsets) {
    for (uint64_t off : offsets) {
        Status s = mark_done(fd, off, false);
        if (!s) return s;
    }
    if (!offsets.empty() && fsync(fd) != 0)
        return make_error(std::string("fsync: ") + strerror(errno));
    return {};
}

Status update_warn_time(int fd, uint64_t data_offset, long when, bool sync) {
    std::string text = strprintf("%15ld", when);
    if (text.size() != 15) return make_error("warning time does not fit its record");
    if (pwrite(fd, text.data(), text.size(), static_cast<off_t>(data_offset)) != 15)
        return make_error(std::string("update warning time: ") + strerror(errno));
    if (sync && fsync(fd) != 0) return make_error(std::string("fsync: ") + strerror(errno));
    return {};
}

}  // namespace postern::queue
