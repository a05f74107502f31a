#include "util/message/message_parser.h"

#include <algorithm>

#include "util/message/header_opts.h"

namespace postern::message {

MessageParser::MessageParser(MessageSink& sink, ParserLimits limits)
    : sink_(sink), limits_(limits) {
    if (limits_.max_line == 0) limits_.max_line = 1;
}

void MessageParser::feed(std::string_view data) {
    if (finished_) return;
    size_ += data.size();
    while (!data.empty()) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
            // Keep the tail for the next chunk, in pieces of at most max_line.
            size_t room = limits_.max_line - partial_.size();
            size_t take = std::min(room, data.size());
            partial_.append(data.substr(0, take));
            data.remove_prefix(take);
            if (partial_.size() >= limits_.max_line) {
                line(partial_);
                partial_.clear();
            }
            continue;
        }
        if (partial_.empty() && nl <= limits_.max_line) {
            line(data.substr(0, nl));  // the common case: no copy
        } else {
            partial_.append(data.substr(0, nl));
            std::string_view whole = partial_;
            while (whole.size() > limits_.max_line) {
                line(whole.substr(0, limits_.max_line));
                whole.remove_prefix(limits_.max_line);
            }
            line(whole);
            partial_.clear();
        }
        data.remove_prefix(nl + 1);
    }
}

void MessageParser::finish() {
    if (finished_) return;
    if (!partial_.empty()) {
        line(partial_);
        partial_.clear();
    }
    if (in_header_) end_headers();
    finished_ = true;
}

void MessageParser::line(std::string_view l) {
    if (in_header_)
        header_line(l);
    else
        sink_.body_line(l);
}

void MessageParser::header_line(std::string_view l) {
    bool blank_start = !l.empty() && (l[0] == ' ' || l[0] == '\t');
    if (blank_start && !header_.empty()) {
        append_header("\n");
        append_header(l);
        return;
    }
    flush_header();
    if (!l.empty() && is_header(l)) {
        append_header(l);
        return;
    }
    end_headers();
    sink_.body_line(l);
}

void MessageParser::append_header(std::string_view text) {
    size_t limit = limits_.header_size_limit;
    if (header_.size() >= limit) {
        if (!text.empty()) truncated_ = true;
        return;
    }
    if (header_.size() + text.size() > limit) {
        truncated_ = true;
        text = text.substr(0, limit - header_.size());
    }
    header_.append(text);
}

void MessageParser::flush_header() {
    if (header_.empty()) return;
    // A header cut right after a line break would end in "\n": drop that.
    while (!header_.empty() && header_.back() == '\n') header_.pop_back();
    sink_.header(header_);
    header_.clear();
}

void MessageParser::end_headers() {
    flush_header();
    in_header_ = false;
    sink_.headers_done();
}

}  // namespace postern::message
