#include "util/ipc/anvil_proto.h"

#include <array>
#include <utility>

namespace postern::ipc::anvil {
namespace {

constexpr std::array<std::pair<Request, std::string_view>, 8> kNames = {{
    {Request::Connect, "connect"},
    {Request::Disconnect, "disconnect"},
    {Request::Message, "message"},
    {Request::Recipient, "recipient"},
    {Request::NewTls, "newtls"},
    {Request::NewTlsReport, "newtls_report"},
    {Request::Auth, "auth"},
    {Request::Lookup, "lookup"},
}};

bool has_rate_only(Request r) {
    return r == Request::Message || r == Request::Recipient || r == Request::NewTls ||
           r == Request::NewTlsReport || r == Request::Auth;
}

}  // namespace

std::string_view request_name(Request r) {
    for (const auto& [req, name] : kNames)
        if (req == r) return name;
    return "";
}

std::optional<Request> request_from_name(std::string_view name) {
    for (const auto& [req, n] : kNames)
        if (n == name) return req;
    return std::nullopt;
}

AttrRecord AnvilRequest::to_record() const {
    AttrRecord r;
    r.add("request", request_name(request)).add("ident", ident);
    return r;
}

Result<AnvilRequest> AnvilRequest::from_record(const AttrRecord& record) {
    RecordReader reader(record);
    std::string name = reader.take("request");
    std::string ident = reader.take("ident");
    if (Status st = reader.finish(); !st) return make_error(st.error());
    auto req = request_from_name(name);
    if (!req) return make_error("unrecognized request: \"" + name + "\"");
    return AnvilRequest{*req, std::move(ident)};
}

AttrRecord AnvilReply::to_record(Request request) const {
    AttrRecord r;
    r.add_long("status", status);
    if (status != kStatusOk) return r;
    if (request == Request::Connect) {
        r.add_long("count", count).add_long("rate", rate);
    } else if (has_rate_only(request)) {
        r.add_long("rate", rate);
    } else if (request == Request::Lookup) {
        r.add_long("count", count).add_long("rate", rate).add_long("mail", mail);
        r.add_long("rcpt", rcpt).add_long("newtls", newtls).add_long("auth", auth);
    }
    return r;
}

Result<AnvilReply> AnvilReply::from_record(Request request, const AttrRecord& record) {
    RecordReader reader(record);
    AnvilReply out;
    out.status = reader.take_long("status");
    if (out.status == kStatusOk) {
        if (request == Request::Connect || request == Request::Lookup) out.count = reader.take_long("count");
        if (request != Request::Disconnect) out.rate = reader.take_long("rate");
        if (request == Request::Lookup) {
            out.mail = reader.take_long("mail");
            out.rcpt = reader.take_long("rcpt");
            out.newtls = reader.take_long("newtls");
            out.auth = reader.take_long("auth");
        }
    }
    if (Status st = reader.finish(); !st) return make_error(st.error());
    return out;
}

std::string make_ident(std::string_view service, std::string_view address) {
    std::string s(service);
    s += ':';
    s += address;
    return s;
}

Result<AnvilReply> AnvilClient::call(Request request, std::string_view service, std::string_view address) {
    AnvilRequest req{request, make_ident(service, address)};
    auto reply = ipc_.call(req.to_record());
    if (!reply) return make_error(reply.error());
    auto parsed = AnvilReply::from_record(request, *reply);
    if (!parsed) return make_error("anvil reply: " + parsed.error());
    if (parsed->status != kStatusOk)
        return make_error("anvil: request " + std::string(request_name(request)) + " failed");
    return parsed;
}

Status AnvilClient::disconnect(std::string_view service, std::string_view addr) {
    auto r = call(Request::Disconnect, service, addr);
    if (!r) return make_error(r.error());
    return {};
}

Result<long> AnvilClient::rate(Request request, std::string_view service, std::string_view addr) {
    auto r = call(request, service, addr);
    if (!r) return make_error(r.error());
    return r->rate;
}

}  // namespace postern::ipc::anvil
