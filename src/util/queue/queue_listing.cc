// Reading the queue as Postfix's showq(8) daemon does (queue_listing.h).
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <unordered_set>

#include "util/queue/queue_listing.h"
#include "util/address/address.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"
#include "util/queue/delivery_log.h"
#include "util/queue/mail_open_ok.h"
#include "util/queue/queue_file.h"
#include "util/queue/record.h"

namespace postern::queue {
namespace {


// showq's order: maildrop first, then active before incoming (qmgr moves
// incoming -> active, so a message caught in flight is not listed twice).
constexpr std::string_view kListedQueues[] = {kMaildrop, kActive,
                                              kIncoming, kDeferred,
                                              kHold};

// Postfix's MAIL_QUEUE_STAT_EXPIRE: postsuper -e/-f marks a file with group-execute.
constexpr mode_t kStatExpire = S_IXGRP;

std::string shown_address(std::string_view internal, const ShowSettings& s) {
    if (internal.empty()) internal = s.empty_address;
    return printable(address::to_external(internal), s.utf8);
}

// Postfix accepts a size record of digits and spaces only.
bool parse_size_record(std::string_view data, long& size) {
    if (data.find_first_not_of("0123456789 ") != std::string_view::npos) return false;
    size = std::atol(std::string(data).c_str());
    return size >= 0;
}

// Postfix's own defer logs (a queue taken over from Postfix): blocks of name=value lines
// separated by empty lines, after a "<rcpt>: text" line; the recipient is already in
// external form there.
bool read_postfix_defer_log(const std::string& path, const ShowSettings& s,
                            std::vector<ListedRecipient>& out) {
    auto text = read_file(path);
    if (!text) return false;
    ListedRecipient entry;
    bool have = false;
    auto flush = [&] {
        if (have) out.push_back({printable(entry.address, s.utf8), entry.reason});
        entry = {};
        have = false;
    };
    std::string_view rest = *text;
    while (!rest.empty()) {
        size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (line.empty()) flush();
        else if (line.starts_with("recipient=")) entry.address = line.substr(10), have = true;
        else if (line.starts_with("reason=")) entry.reason = line.substr(7);
    }
    flush();
    return true;
}

// The defer log's recipients come first, with their reasons; they are remembered so the
// queue file's own recipient records do not list them again.
void add_defer_reasons(const Layout& layout, const ShowSettings& s, ListedMessage& m,
                       std::unordered_set<std::string>& seen) {
    std::vector<ListedRecipient> listed;
    if (auto entries = read_delivery_log(layout, kDefer, m.id)) {
        for (const auto& e : *entries) listed.push_back({shown_address(e.recipient, s), e.reason});
    } else if (!read_postfix_defer_log(layout.path(kDefer, m.id), s, listed)) {
        log::warn("%s", entries.error().c_str());
        return;
    }
    for (auto& r : listed) {
        if (s.duplicate_filter_limit == 0 ||
            static_cast<long>(seen.size()) < s.duplicate_filter_limit)
            seen.insert(r.address);
        m.recipients.push_back(std::move(r));
    }
}

struct ReadState {
    long file_size = 0;
    bool size_ok = false;
    bool sender_seen = false;
    std::unordered_set<std::string> seen;
};

// One record; false stops reading this file.
bool take_record(RecordReader& reader, const Record& r, ReadState& st,
                 const Layout& layout, const ShowSettings& s, ListedMessage& m) {
    std::string data(r.data);
    switch (r.type) {
        case rec::kTime:
            if (m.arrival == 0) m.arrival = std::atol(data.c_str());
            break;
        case rec::kSize:
            if (st.size_ok) break;
            st.size_ok = parse_size_record(data, m.size);
            if (!st.size_ok) {
                log::warn("%s: malformed size record: %.100s -- using file size instead",
                          m.id.c_str(), printable(data, false).c_str());
                m.size = st.file_size;
            }
            break;
        case rec::kFrom:
            if (st.sender_seen) {
                log::warn("%s: duplicate sender address: %s -- skipping remainder of this file",
                          m.id.c_str(), shown_address(data, s).c_str());
                return false;
            }
            st.sender_seen = true;
            m.sender = shown_address(data, s);
            add_defer_reasons(layout, s, m, st.seen);
            break;
        case rec::kRcpt: {
            if (!st.sender_seen) {
                log::warn("%s: missing sender address: %s -- skipping remainder of this file",
                          m.id.c_str(), shown_address(data, s).c_str());
                return false;
            }
            std::string addr = shown_address(data, s);
            if (!st.seen.count(addr)) m.recipients.push_back({std::move(addr), ""});
            break;
        }
        case rec::kMesg:
            // Skip the content: the extracted records after it may add recipients.
            if (st.size_ok) reader.seek(reader.offset() + static_cast<uint64_t>(m.size));
            break;
        default: break;
    }
    return true;
}

}  // namespace

std::string printable(std::string_view text, bool utf8) {
    std::string out(text);
    size_t i = 0;
    while (i < out.size()) {
        auto ch = static_cast<unsigned char>(out[i]);
        auto next = i + 1 < out.size() ? static_cast<unsigned char>(out[i + 1]) : 0;
        if (ch < 128 && ch >= 32 && ch < 127) {
            ++i;
        } else if (utf8 && ch >= 194 && ch <= 254 && next >= 128 && next < 192) {
            // A UTF-8 lead byte and its continuation bytes stay as they are.
            for (i += 2; i < out.size() && static_cast<unsigned char>(out[i]) >= 128 &&
                         static_cast<unsigned char>(out[i]) < 192;
                 ++i) {
            }
        } else {
            out[i++] = '?';
        }
    }
    return out;
}

bool read_listed_message(int fd, const struct stat& st, const Layout& layout,
                         const ShowSettings& s, ListedMessage& m) {
    ReadState state;
    state.file_size = static_cast<long>(st.st_size);
    m.size = state.file_size;
    m.forced_expire = (st.st_mode & kStatExpire) != 0;
    RecordReader reader(fd_source(fd));
    for (;;) {
        auto r = reader.next();
        if (!r || !*r) break;  // end of file, or damage: show what was read
        if (!take_record(reader, **r, state, layout, s, m)) break;
    }
    if (m.arrival <= 0) m.arrival = static_cast<long>(st.st_mtime);
    return state.sender_seen;
}

Status scan_queues(const Layout& layout, const ShowSettings& s,
                   const std::function<bool(const ListedMessage&)>& sink) {
    for (std::string_view q : kListedQueues) {
        auto ids = layout.list(q);
        if (!ids) return make_error(ids.error());
        for (const std::string& id : *ids) {
            std::string path = layout.path(q, id);
            struct stat st;
            if (!mail_open_ok(path, st)) continue;
            UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
            if (!fd) {
                if (errno != ENOENT)
                    log::warn("open %s %s: %s", std::string(q).c_str(), id.c_str(),
                              strerror(errno));
                continue;
            }
            ListedMessage m;
            m.queue = std::string(q);
            m.id = id;
            if (read_listed_message(fd.get(), st, layout, s, m) && !sink(m)) return {};
        }
    }
    return {};
}

ipc::AttrRecord ListedMessage::to_record() const {
    ipc::AttrRecord r;
    r.add("queue_name", queue).add("queue_id", id).add_long("time", arrival).add_long("size", size);
    r.add_long("forced_expire", forced_expire ? 1 : 0).add("sender", sender);
    for (const ListedRecipient& rcpt : recipients) r.add("recipient", rcpt.address).add("reason", rcpt.reason);
    return r;
}

Result<ListedMessage> ListedMessage::from_record(const ipc::AttrRecord& record) {
    ListedMessage m;
    std::vector<std::string_view> need = {"queue_name", "queue_id", "time", "size", "forced_expire", "sender"};
    size_t i = 0;
    const auto& attrs = record.attrs();
    long expire = 0;
    for (std::string_view name : need) {
        if (i >= attrs.size() || attrs[i].name != name) return make_error("showq record: missing " + std::string(name));
        const std::string& v = attrs[i++].value;
        if (name == "queue_name") m.queue = v;
        else if (name == "queue_id") m.id = v;
        else if (name == "sender") m.sender = v;
        else if (!parse_long(v, name == "time" ? m.arrival : name == "size" ? m.size : expire))
            return make_error("showq record: bad " + std::string(name));
    }
    m.forced_expire = expire != 0;
    for (; i + 1 < attrs.size() && attrs[i].name == "recipient" && attrs[i + 1].name == "reason"; i += 2)
        m.recipients.push_back({attrs[i].value, attrs[i + 1].value});
    if (i != attrs.size()) return make_error("showq record: unexpected " + attrs[i].name);
    return m;
}

}  // namespace postern::queue
