// Running postdrop(1) and feeding it the record stream of one message.
#include "sendmail/postdrop_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <ctype.h>
#include <unistd.h>

#include "util/base/strings.h"
#include "util/ipc/attr.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"
#include "util/queue/record.h"

namespace postern::sendmail {
namespace {

constexpr size_t kFlushAt = 64 * 1024;

// command_directory/postdrop; a build tree that was not installed has it beside us.
std::string postdrop_path(const config::Config& cfg) {
    std::string path = cfg.get("command_directory") + "/postdrop";
    if (access(path.c_str(), X_OK) == 0) return path;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string dir(self, static_cast<size_t>(n));
        std::string beside = dir.substr(0, dir.rfind('/')) + "/postdrop";
        if (access(beside.c_str(), X_OK) == 0) return beside;
    }
    return path;
}

}  // namespace

Result<PostdropStream> PostdropStream::start(const config::Config& cfg, int verbose) {
    std::string path = postdrop_path(cfg);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + strerror(errno));
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (pipe2(out, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + strerror(errno));
    UniqueFd out_r(out[0]), out_w(out[1]);
    std::vector<std::string> args = {path, "-r"};
    for (int i = 0; i < verbose; ++i) args.push_back("-v");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0) return make_error(std::string("fork: ") + strerror(errno));
    if (pid == 0) {
        if (dup2(in_r.get(), 0) < 0 || dup2(out_w.get(), 1) < 0) _exit(EX_OSERR);
        execv(path.c_str(), argv.data());
        log::warn("execute %s: %s", path.c_str(), strerror(errno));
        _exit(EX_OSERR);
    }
    PostdropStream s;
    s.pid_ = pid;
    s.to_child_ = std::move(in_w);
    s.from_child_ = std::move(out_r);
    return s;
}

PostdropStream::PostdropStream(PostdropStream&& o) noexcept
    : to_child_(std::move(o.to_child_)), from_child_(std::move(o.from_child_)),
      pid_(std::exchange(o.pid_, -1)), buf_(std::move(o.buf_)),
      write_failed_(o.write_failed_), queue_id_(std::move(o.queue_id_)) {}

PostdropStream::~PostdropStream() {
    if (pid_ > 0) abort();
}

void PostdropStream::put(char type, std::string_view data) {
    queue::append_record(buf_, type, data);
    if (buf_.size() >= kFlushAt) flush();
}

void PostdropStream::put_line(std::string_view line, size_t limit) {
    if (limit == 0) limit = 1;
    while (line.size() > limit) {
        put(queue::rec::kCont, line.substr(0, limit));
        line.remove_prefix(limit);
    }
    put(queue::rec::kNorm, line);
}

void PostdropStream::flush() {
    size_t off = 0;
    while (!write_failed_ && off < buf_.size()) {
        ssize_t n = write(to_child_.get(), buf_.data() + off, buf_.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            write_failed_ = true;  // postdrop stopped reading: its status says why
            break;
        }
        off += static_cast<size_t>(n);
    }
    buf_.clear();
}

int PostdropStream::reap() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
}

long PostdropStream::finish(std::string& reason) {
    flush();
    to_child_.reset();
    ipc::AttrDecoder decoder;
    std::optional<long> status;
    char chunk[4096];
    while (!status) {
        ssize_t n = read(from_child_.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || !decoder.feed(std::string_view(chunk, static_cast<size_t>(n))).ok()) break;
        while (auto rec = decoder.next()) {
            if (auto id = rec->find("queue_id")) queue_id_ = std::string(*id);
            if (auto st = rec->find("status")) {
                long v = 0;
                status = parse_long(*st, v) ? v : ipc::mail::kCleanupStatBad;
                reason = std::string(rec->find("reason").value_or(""));
            }
        }
    }
    from_child_.reset();
    int wait_status = reap();
    // No verdict, or a postdrop that failed after giving one: nothing was queued.
    if (!status || (*status == 0 && !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)))
        return ipc::mail::kCleanupStatWrite;
    return *status;
}

void PostdropStream::abort() {
    buf_.clear();
    to_child_.reset();
    from_child_.reset();
    if (pid_ > 0) reap();
}

int exit_status_of(long status) {
    using namespace ipc::mail;
    if (status & kCleanupStatBad) return EX_SOFTWARE;
    if (status & kCleanupStatWrite) return EX_TEMPFAIL;
    return EX_UNAVAILABLE;
}

std::string verdict_text(long status, const std::string& reason) {
    std::string text = reason.empty() ? ipc::mail::cleanup_status_text(status) : reason;
    // "5.3.4 message file too big" -> "message file too big", as cleanup_strerror().
    if (text.size() > 6 && isdigit(static_cast<unsigned char>(text[0])) && text[1] == '.')
        text.erase(0, text.find(' ') + 1);
    return text;
}

void write_envelope(PostdropStream& out, const Submission& sub) {
    using namespace queue;
    if (sub.ret) out.put(rec::kAttr, strprintf("%s=%ld", attr::kRet.data(), sub.ret));
    if (!sub.envid.empty()) out.put(rec::kAttr, std::string(attr::kEnvid) + "=" + sub.envid);
    out.put(rec::kAttr, std::string(attr::kRewriteContext) + "=" + sub.rewrite_context);
    if (sub.full_name) out.put(rec::kFullName, *sub.full_name);
    out.put(rec::kFrom, sub.sender);
    if (!sub.encoding.empty()) out.put(rec::kAttr, std::string(attr::kEncoding) + "=" + sub.encoding);
    if (sub.trace_flags) out.put(rec::kAttr, strprintf("trace_flags=%ld", sub.trace_flags));
    for (const Submission::Rcpt& r : sub.recipients) {
        if (!r.orcpt.empty()) out.put(rec::kAttr, std::string(attr::kDsnOrcpt) + "=" + r.orcpt);
        if (r.notify) out.put(rec::kAttr, strprintf("%s=%ld", attr::kDsnNotify.data(), r.notify));
        out.put(rec::kRcpt, r.address);
    }
    out.put(rec::kMesg, "");
}

void write_trailer(PostdropStream& out, const std::vector<std::string>& extracted, long notify) {
    using namespace queue;
    out.put(rec::kXtra, "");
    for (const std::string& r : extracted) {
        if (notify) out.put(rec::kAttr, strprintf("%s=%ld", attr::kDsnNotify.data(), notify));
        out.put(rec::kRcpt, r);
    }
    out.put(rec::kEnd, "");
}

}  // namespace postern::sendmail
