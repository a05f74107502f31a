#include "util/ipc/mail_proto.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"

namespace postern::ipc::mail {
namespace {

// Takes "request" and checks that it names the expected message.
void expect_request(RecordReader& r, std::string_view want, std::string& error) {
    std::string got = r.take("request");
    if (got != want && error.empty()) error = "expected request=" + std::string(want) + ", got \"" + got + "\"";
}

template <class T>
Result<T> finish(RecordReader& r, const std::string& error, T value) {
    if (!error.empty()) return make_error(error);
    if (Status st = r.finish(); !st) return make_error(st.error());
    return value;
}

// Parallel repeated fields ("rcpt", "rcpt_orig", ...) must all have the same length.
bool same_size(size_t n, std::initializer_list<size_t> others) {
    for (size_t o : others)
        if (o != n) return false;
    return true;
}

long to_long(const std::string& s, std::string& error) {
    long v = 0;
    if (!parse_long(s, v) && error.empty()) error = "bad number \"" + s + "\"";
    return v;
}

}  // namespace

std::string agent_socket(std::string_view transport) { return "private/" + std::string(transport); }

Status send_trigger(const std::string& queue_directory, std::string_view socket_name,
                    std::string_view bytes, long timeout_seconds) {
    std::string path = queue_directory + "/" + std::string(socket_name);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) return make_error("socket path too long: " + path);
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return make_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{timeout_seconds, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0)
        return make_error("connect to " + std::string(socket_name) + ": " + std::strerror(errno));
    size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_error("write to " + std::string(socket_name) + ": " + std::strerror(errno));
        sent += static_cast<size_t>(n);
    }
    return {};
}

// ---- DSN -----------------------------------------------------------------------------

namespace {
constexpr std::array<std::pair<long, std::string_view>, 4> kNotifyNames = {{
    {kNotifyNever, "NEVER"}, {kNotifySuccess, "SUCCESS"}, {kNotifyFailure, "FAILURE"}, {kNotifyDelay, "DELAY"},
}};
}  // namespace

long parse_notify(std::string_view list) {
    long mask = 0;
    for (std::string_view word : split_tokens(list, ", \t")) {
        long bit = 0;
        for (const auto& [b, name] : kNotifyNames)
            if (iequals(word, name)) bit = b;
        if (bit == 0) return 0;
        mask |= bit;
    }
    // NEVER excludes everything else (RFC 3461 section 4.1).
    if ((mask & kNotifyNever) && mask != kNotifyNever) return 0;
    return mask;
}

std::string notify_text(long mask) {
    std::string out;
    for (const auto& [b, name] : kNotifyNames)
        if (mask & b) {
            if (!out.empty()) out += ',';
            out += name;
        }
    return out;
}

// ---- cleanup ---------------------------------------------------------------------------

std::string cleanup_status_text(long status) {
    if (status == kCleanupOk) return "";
    if (status & kCleanupStatBad) return "4.3.0 internal protocol error";
    if (status & kCleanupStatWrite) return "4.3.0 queue file write error";
    if (status & kCleanupStatSize) return "5.3.4 message file too big";
    if (status & kCleanupStatCont) return "5.7.1 message content rejected";
    if (status & kCleanupStatHops) return "5.4.0 too many hops";
    if (status & kCleanupStatRcpt) return "5.1.0 no recipients specified";
    if (status & kCleanupStatDefer) return "4.7.1 service unavailable";
    return "4.3.0 unknown cleanup error";
}

std::string_view request_of(const AttrRecord& r) { return r.find("request").value_or(""); }

AttrRecord CleanupOpen::to_record() const {
    AttrRecord r;
    r.add("request", "open").add_long("flags", flags);
    return r;
}

Result<CleanupOpen> CleanupOpen::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "open", error);
    CleanupOpen out;
    out.flags = r.take_long("flags");
    return finish(r, error, out);
}

AttrRecord CleanupOpened::to_record() const {
    AttrRecord r;
    r.add_long("status", status).add("queue_id", queue_id);
    return r;
}

Result<CleanupOpened> CleanupOpened::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    CleanupOpened out;
    out.status = r.take_long("status");
    out.queue_id = r.take("queue_id");
    return finish(r, "", out);
}

AttrRecord CleanupEnvelope::to_record() const {
    AttrRecord r;
    r.add("request", "envelope").add("sender", sender);
    if (fullname) r.add("fullname", *fullname);
    r.add_long("arrival_sec", arrival_sec).add_long("arrival_usec", arrival_usec);
    r.add("envid", envid).add_long("ret", ret);
    if (smtputf8 != 0) r.add_long("smtputf8", smtputf8);
    for (const auto& [name, value] : attributes) r.add("attr_name", name).add("attr_value", value);
    for (const auto& rc : recipients)
        r.add("rcpt", rc.address).add("rcpt_orig", rc.orig).add("rcpt_orcpt", rc.dsn_orcpt).add_long("rcpt_notify", rc.notify);
    return r;
}

Result<CleanupEnvelope> CleanupEnvelope::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "envelope", error);
    CleanupEnvelope out;
    out.sender = r.take("sender");
    out.fullname = r.take_optional("fullname");
    out.arrival_sec = r.take_long("arrival_sec");
    out.arrival_usec = r.take_long("arrival_usec");
    out.envid = r.take("envid");
    out.ret = r.take_long("ret");
    // Optional: clients that know no SMTPUTF8 (and older ones) leave it out.
    if (auto v = r.take_optional("smtputf8"); v && !parse_long(*v, out.smtputf8) && error.empty())
        error = "attribute smtputf8: bad number \"" + *v + "\"";
    auto names = r.take_all("attr_name");
    auto values = r.take_all("attr_value");
    auto rcpts = r.take_all("rcpt");
    auto origs = r.take_all("rcpt_orig");
    auto orcpts = r.take_all("rcpt_orcpt");
    auto notifies = r.take_all("rcpt_notify");
    if (names.size() != values.size() && error.empty()) error = "attr_name/attr_value count mismatch";
    if (!same_size(rcpts.size(), {origs.size(), orcpts.size(), notifies.size()}) && error.empty())
        error = "recipient field count mismatch";
    if (error.empty()) {
        for (size_t i = 0; i < names.size(); ++i) out.attributes.emplace_back(std::move(names[i]), std::move(values[i]));
        for (size_t i = 0; i < rcpts.size(); ++i)
            out.recipients.push_back({std::move(rcpts[i]), std::move(origs[i]), std::move(orcpts[i]),
                                      to_long(notifies[i], error)});
    }
    return finish(r, error, std::move(out));
}

AttrRecord CleanupContent::to_record() const {
    AttrRecord r;
    r.add("request", "content").add("data", data);
    return r;
}

Result<CleanupContent> CleanupContent::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "content", error);
    CleanupContent out;
    out.data = r.take("data");
    return finish(r, error, std::move(out));
}

AttrRecord CleanupEnd::to_record() const {
    AttrRecord r;
    r.add("request", "end");
    if (late_flags != 0) r.add_long("late_flags", late_flags);
    return r;
}

Result<CleanupEnd> CleanupEnd::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "end", error);
    CleanupEnd out;
    if (rec.find("late_flags")) out.late_flags = r.take_long("late_flags");
    if (error.empty() && (out.late_flags & ~(kCleanupHold | kCleanupDiscard)) != 0)
        error = "late_flags: only hold and discard may be set at the end";
    return finish(r, error, std::move(out));
}

AttrRecord CleanupResult::to_record() const {
    AttrRecord r;
    r.add_long("status", status).add("reason", reason).add("queue_id", queue_id);
    return r;
}

Result<CleanupResult> CleanupResult::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    CleanupResult out;
    out.status = r.take_long("status");
    out.reason = r.take("reason");
    out.queue_id = r.take("queue_id");
    return finish(r, "", std::move(out));
}

// ---- trivial-rewrite ----------------------------------------------------------------------

AttrRecord RewriteRequest::to_record() const {
    AttrRecord r;
    r.add("request", "rewrite").add("rule", rule).add("address", address);
    return r;
}

Result<RewriteRequest> RewriteRequest::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "rewrite", error);
    RewriteRequest out;
    out.rule = r.take("rule");
    out.address = r.take("address");
    return finish(r, error, std::move(out));
}

AttrRecord RewriteReply::to_record() const {
    AttrRecord r;
    r.add_long("flags", flags).add("address", address);
    return r;
}

Result<RewriteReply> RewriteReply::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    RewriteReply out;
    out.flags = r.take_long("flags");
    out.address = r.take("address");
    return finish(r, "", std::move(out));
}

AttrRecord ResolveRequest::to_record() const {
    AttrRecord r;
    r.add("request", request).add("sender", sender).add("address", address);
    return r;
}

Result<ResolveRequest> ResolveRequest::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    ResolveRequest out;
    out.request = r.take("request");
    if (out.request != "resolve" && out.request != "verify")
        error = "expected request=resolve or verify, got \"" + out.request + "\"";
    out.sender = r.take("sender");
    out.address = r.take("address");
    return finish(r, error, std::move(out));
}

AttrRecord ResolveReply::to_record() const {
    AttrRecord r;
    r.add_long("flags", flags).add("transport", transport).add("nexthop", nexthop).add("recipient", recipient);
    return r;
}

Result<ResolveReply> ResolveReply::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    ResolveReply out;
    out.flags = r.take_long("flags");
    out.transport = r.take("transport");
    out.nexthop = r.take("nexthop");
    out.recipient = r.take("recipient");
    return finish(r, "", std::move(out));
}

// ---- delivery ---------------------------------------------------------------------------

AttrRecord DeliveryRequest::to_record() const {
    AttrRecord r;
    r.add("request", "deliver").add("queue_name", queue_name).add("queue_id", queue_id);
    r.add_long("data_offset", data_offset).add_long("data_size", data_size);
    r.add("nexthop", nexthop).add("encoding", encoding).add_long("smtputf8", smtputf8);
    r.add("sender", sender).add("envid", envid).add_long("ret", ret).add_long("flags", flags);
    r.add_long("arrival_sec", arrival_sec).add_long("arrival_usec", arrival_usec);
    r.add_long("active_sec", active_sec).add_long("active_usec", active_usec);
    r.add("client_name", client_name).add("client_address", client_address);
    r.add("client_protocol", client_protocol).add("client_helo", client_helo);
    for (const auto& rc : recipients)
        r.add("rcpt", rc.address).add("rcpt_orig", rc.orig).add("rcpt_orcpt", rc.dsn_orcpt)
            .add_long("rcpt_notify", rc.notify).add_long("rcpt_offset", rc.offset);
    return r;
}

Result<DeliveryRequest> DeliveryRequest::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    expect_request(r, "deliver", error);
    DeliveryRequest out;
    out.queue_name = r.take("queue_name");
    out.queue_id = r.take("queue_id");
    out.data_offset = r.take_long("data_offset");
    out.data_size = r.take_long("data_size");
    out.nexthop = r.take("nexthop");
    out.encoding = r.take("encoding");
    out.smtputf8 = r.take_long("smtputf8");
    out.sender = r.take("sender");
    out.envid = r.take("envid");
    out.ret = r.take_long("ret");
    out.flags = r.take_long("flags");
    out.arrival_sec = r.take_long("arrival_sec");
    out.arrival_usec = r.take_long("arrival_usec");
    // Optional: a request without them logs b = 0 (the agent's handoff stands for it).
    out.active_sec = r.take_long_optional("active_sec").value_or(0);
    out.active_usec = r.take_long_optional("active_usec").value_or(0);
    out.client_name = r.take("client_name");
    out.client_address = r.take("client_address");
    out.client_protocol = r.take("client_protocol");
    out.client_helo = r.take("client_helo");
    auto rcpts = r.take_all("rcpt");
    auto origs = r.take_all("rcpt_orig");
    auto orcpts = r.take_all("rcpt_orcpt");
    auto notifies = r.take_all("rcpt_notify");
    auto offsets = r.take_all("rcpt_offset");
    if (!same_size(rcpts.size(), {origs.size(), orcpts.size(), notifies.size(), offsets.size()}))
        error = "recipient field count mismatch";
    else if (rcpts.empty() && error.empty())
        error = "delivery request without recipients";
    if (error.empty())
        for (size_t i = 0; i < rcpts.size(); ++i)
            out.recipients.push_back({std::move(rcpts[i]), std::move(origs[i]), std::move(orcpts[i]),
                                      to_long(notifies[i], error), to_long(offsets[i], error)});
    return finish(r, error, std::move(out));
}

AttrRecord DeliveryReply::to_record() const {
    AttrRecord r;
    r.add_long("status", status);
    for (const auto& res : results)
        r.add_long("result_index", res.index).add("result_status", res.status).add("result_action", res.action)
            .add("result_reason", res.reason).add("result_relay", res.relay)
            .add_long("result_notify_passed_on", res.notify_passed_on ? 1 : 0);
    return r;
}

Result<DeliveryReply> DeliveryReply::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    DeliveryReply out;
    out.status = r.take_long("status");
    auto idx = r.take_all("result_index");
    auto status = r.take_all("result_status");
    auto action = r.take_all("result_action");
    auto reason = r.take_all("result_reason");
    auto relay = r.take_all("result_relay");
    // Optional (an agent that never passes NOTIFY=SUCCESS on may leave it out).
    auto passed_on = r.take_all("result_notify_passed_on");
    if (passed_on.empty()) passed_on.assign(idx.size(), "0");
    if (!same_size(idx.size(), {status.size(), action.size(), reason.size(), relay.size(), passed_on.size()}))
        error = "result field count mismatch";
    if (error.empty())
        for (size_t i = 0; i < idx.size(); ++i) {
            const std::string& s = status[i];
            if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') {
                if (error.empty()) error = "bad result_status \"" + s + "\"";
                break;
            }
            out.results.push_back({to_long(idx[i], error), std::move(status[i]), std::move(action[i]),
                                   std::move(reason[i]), std::move(relay[i]), to_long(passed_on[i], error) != 0});
        }
    return finish(r, error, std::move(out));
}

// ---- bounce -----------------------------------------------------------------------------

namespace {
constexpr std::array<std::pair<BounceCommand, std::string_view>, 4> kBounceNames = {{
    {BounceCommand::Flush, "flush"},
    {BounceCommand::DeferFlush, "defer_flush"},
    {BounceCommand::Warn, "warn"},
    {BounceCommand::Trace, "trace"},
}};
}  // namespace

std::string_view bounce_command_name(BounceCommand c) {
    for (const auto& [cmd, name] : kBounceNames)
        if (cmd == c) return name;
    return "";
}

AttrRecord BounceRequest::to_record() const {
    AttrRecord r;
    r.add("request", bounce_command_name(command)).add("queue_name", queue_name).add("queue_id", queue_id);
    r.add("encoding", encoding).add_long("smtputf8", smtputf8).add("sender", sender);
    r.add("envid", envid).add_long("ret", ret).add_long("flags", trace_flags);
    return r;
}

Result<BounceRequest> BounceRequest::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    std::string error;
    BounceRequest out;
    std::string name = r.take("request");
    bool known = false;
    for (const auto& [cmd, n] : kBounceNames)
        if (n == name) {
            out.command = cmd;
            known = true;
        }
    if (!known) error = "unknown bounce request \"" + name + "\"";
    out.queue_name = r.take("queue_name");
    out.queue_id = r.take("queue_id");
    out.encoding = r.take("encoding");
    out.smtputf8 = r.take_long("smtputf8");
    out.sender = r.take("sender");
    out.envid = r.take("envid");
    out.ret = r.take_long("ret");
    out.trace_flags = r.take_long("flags");
    return finish(r, error, std::move(out));
}

AttrRecord BounceReply::to_record() const {
    AttrRecord r;
    r.add_long("status", status).add("queue_id", queue_id);
    return r;
}

Result<BounceReply> BounceReply::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    BounceReply out;
    out.status = r.take_long("status");
    out.queue_id = r.take("queue_id");
    return finish(r, "", std::move(out));
}

// ---- delivery logs --------------------------------------------------------------------------

AttrRecord DeliveryLogEntry::to_record() const {
    AttrRecord r;
    r.add("recipient", recipient).add("orig_rcpt", orig_rcpt).add("dsn_orig_rcpt", dsn_orcpt);
    r.add_long("notify_flags", notify).add_long("offset", offset).add("status", status);
    r.add("action", action).add("reason", reason).add("relay", relay).add_long("time", when);
    return r;
}

Result<DeliveryLogEntry> DeliveryLogEntry::from_record(const AttrRecord& rec) {
    RecordReader r(rec);
    DeliveryLogEntry out;
    out.recipient = r.take("recipient");
    out.orig_rcpt = r.take("orig_rcpt");
    out.dsn_orcpt = r.take("dsn_orig_rcpt");
    out.notify = r.take_long("notify_flags");
    out.offset = r.take_long("offset");
    out.status = r.take("status");
    out.action = r.take("action");
    out.reason = r.take("reason");
    out.relay = r.take("relay");
    out.when = r.take_long("time");
    return finish(r, "", std::move(out));
}

}  // namespace postern::ipc::mail
