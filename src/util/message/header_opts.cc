#include "util/message/header_opts.h"

#include "util/base/strings.h"

namespace postern::message {
namespace {

constexpr unsigned kXRecip = kHeaderRecip | kHeaderExtract;

constexpr HeaderInfo kKnown[] = {
    {"Apparently-To", HeaderType::ApparentlyTo, kHeaderRecip},
    {"Bcc", HeaderType::Bcc, kXRecip},
    {"Cc", HeaderType::Cc, kXRecip},
    {"Content-Description", HeaderType::ContentDescription, kHeaderMime},
    {"Content-Disposition", HeaderType::ContentDisposition, kHeaderMime},
    {"Content-ID", HeaderType::ContentId, kHeaderMime},
    {"Content-Length", HeaderType::ContentLength, 0},
    {"Content-Transfer-Encoding", HeaderType::ContentTransferEncoding, kHeaderMime},
    {"Content-Type", HeaderType::ContentType, kHeaderMime},
    {"Delivered-To", HeaderType::DeliveredTo, 0},
    {"Disposition-Notification-To", HeaderType::DispositionNotificationTo, kHeaderSender},
    {"Date", HeaderType::Date, 0},
    {"Errors-To", HeaderType::ErrorsTo, kHeaderSender},
    {"From", HeaderType::From, kHeaderSender},
    {"Mail-Followup-To", HeaderType::MailFollowupTo, kHeaderSender},
    {"Message-Id", HeaderType::MessageId, 0},
    {"MIME-Version", HeaderType::MimeVersion, kHeaderMime},
    {"Received", HeaderType::Received, 0},
    {"Reply-To", HeaderType::ReplyTo, kHeaderSender},
    {"Resent-Bcc", HeaderType::ResentBcc, kXRecip | kHeaderResent},
    {"Resent-Cc", HeaderType::ResentCc, kXRecip | kHeaderResent},
    {"Resent-Date", HeaderType::ResentDate, kHeaderResent},
    {"Resent-From", HeaderType::ResentFrom, kHeaderSender | kHeaderResent},
    {"Resent-Message-Id", HeaderType::ResentMessageId, kHeaderResent},
    {"Resent-Reply-To", HeaderType::ResentReplyTo, kHeaderRecip | kHeaderResent},
    {"Resent-Sender", HeaderType::ResentSender, kHeaderSender | kHeaderResent},
    {"Resent-To", HeaderType::ResentTo, kXRecip | kHeaderResent},
    {"Return-Path", HeaderType::ReturnPath, kHeaderSender},
    {"Return-Receipt-To", HeaderType::ReturnReceiptTo, kHeaderSender},
    {"Sender", HeaderType::Sender, kHeaderSender},
    {"To", HeaderType::To, kXRecip},
};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::optional<std::string_view> header_name(std::string_view line) {
    size_t i = 0;
    while (i < line.size()) {
        auto c = static_cast<unsigned char>(line[i]);
        if (c == ':' || is_blank(line[i]) || c <= 0x20 || c >= 0x7f) break;
        ++i;
    }
    if (i == 0) return std::nullopt;
    size_t name_end = i;
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i >= line.size() || line[i] != ':') return std::nullopt;
    return line.substr(0, name_end);
}

std::string_view header_value(std::string_view header) {
    size_t colon = header.find(':');
    if (colon == std::string_view::npos) return {};
    size_t i = colon + 1;
    while (i < header.size() && (is_blank(header[i]) || header[i] == '\n' || header[i] == '\r')) ++i;
    return header.substr(i);
}

std::string unfold(std::string_view header) {
    std::string out;
    out.reserve(header.size());
    for (size_t i = 0; i < header.size(); ++i) {
        if (header[i] == '\r' && i + 1 < header.size() && header[i + 1] == '\n') continue;
        if (header[i] == '\n') continue;
        out += header[i];
    }
    return out;
}

HeaderTable::HeaderTable(const std::vector<std::string>& drop) {
    for (const HeaderInfo& h : kKnown) by_name_.emplace(lowercase(h.name), h);
    for (const std::string& name : drop) {
        std::string key = lowercase(name);
        if (key.empty()) continue;
        auto it = by_name_.find(key);
        if (it == by_name_.end()) it = by_name_.emplace(key, HeaderInfo{{}, HeaderType::Other, 0}).first;
        it->second.flags |= kHeaderDrop;
    }
}

std::vector<std::string> HeaderTable::default_drop_list() {
    return {"bcc", "content-length", "resent-bcc", "return-path"};
}

const HeaderInfo* HeaderTable::find_name(std::string_view name) const {
    auto it = by_name_.find(lowercase(name));
    return it == by_name_.end() ? nullptr : &it->second;
}

const HeaderInfo* HeaderTable::find_line(std::string_view line) const {
    auto name = header_name(line);
    return name ? find_name(*name) : nullptr;
}

}  // namespace postern::message
