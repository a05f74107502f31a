#include "util/smtpclient/smtp_reply.h"

#include <cctype>
#include <cstdlib>

#include "util/base/strings.h"
#include "util/dsn/dsn_text.h"

namespace postern::smtpclient {

std::string Reply::text() const {
    std::string out;
    for (const auto& l : lines) {
        if (!out.empty()) out += ' ';
        out += l;
    }
    return out;
}

std::string Reply::dsn() const {
    std::string fallback = std::string(1, cls()) + ".0.0";
    if (lines.empty() || lines[0].size() < 5) return fallback;
    std::string_view rest = std::string_view(lines[0]).substr(4);
    size_t end = rest.find(' ');
    std::string_view code = rest.substr(0, end);
    if (dsn::is_status_code(code) && code[0] == cls()) return std::string(code);
    return fallback;
}

Status ReplyParser::feed(std::string_view data, std::vector<Reply>& out) {
    for (char c : data) {
        if (c == '\n') {
            std::string line = std::move(line_);
            line_.clear();
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (Status st = take_line(std::move(line), out); !st) return st;
            continue;
        }
        if (line_.size() >= max_line_) return make_error("reply line too long");
        line_ += c;
    }
    return Status::success();
}

Status ReplyParser::take_line(std::string line, std::vector<Reply>& out) {
    if (line.size() < 3 || !isdigit(static_cast<unsigned char>(line[0])) ||
        !isdigit(static_cast<unsigned char>(line[1])) || !isdigit(static_cast<unsigned char>(line[2])) ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
        return make_error("malformed reply: " + dsn::mask_unsafe(line, false));
    int code = std::atoi(line.substr(0, 3).c_str());
    if (code < 200 || code > 599) return make_error("malformed reply: " + dsn::mask_unsafe(line, false));
    bool more = line.size() > 3 && line[3] == '-';
    if (pending_.lines.size() >= max_lines_) return make_error("reply has too many lines");
    pending_.code = code;
    pending_.lines.push_back(std::move(line));
    if (!more) {
        out.push_back(std::move(pending_));
        pending_ = Reply{};
    }
    return Status::success();
}

Features parse_ehlo(const Reply& reply) {
    Features f;
    for (size_t i = 1; i < reply.lines.size(); ++i) {
        std::string_view line = reply.lines[i];
        if (line.size() <= 4) continue;
        auto words = split_tokens(line.substr(4), " \t");
        if (words.empty()) continue;
        std::string key = lowercase(words[0]);
        if (key == "pipelining") f.pipelining = true;
        else if (key == "8bitmime") f.eightbitmime = true;
        else if (key == "smtputf8") f.smtputf8 = true;
        else if (key == "dsn") f.dsn = true;
        else if (key == "starttls") f.starttls = true;
        else if (key == "chunking") f.chunking = true;
        else if (key == "size") {
            f.size = true;
            long n = 0;
            if (words.size() > 1 && parse_long(words[1], n) && n > 0) f.size_limit = static_cast<unsigned long>(n);
        } else if (key == "auth" || (key.rfind("auth=", 0) == 0)) {
            if (key != "auth") words[0] = words[0].substr(5);
            for (size_t w = key == "auth" ? 1 : 0; w < words.size(); ++w) {
                std::string mech(words[w]);
                for (auto& c : mech) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
                bool dup = false;
                for (const auto& m : f.auth) dup = dup || m == mech;
                if (!dup && !mech.empty()) f.auth.push_back(mech);
            }
        }
    }
    return f;
}

}  // namespace postern::smtpclient
