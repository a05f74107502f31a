// The message of a delivery request, read from its queue file: the content can be read
// from the start any number of times (one pass per mailbox, command or forward), and
// the Delivered-To: headers are collected once for loop detection. Used by local(8)
// and pipe(8).
#pragma once

#include <string>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/mailbox/mail_copy.h"
#include "util/queue/queue_file.h"

namespace postern::mailbox {

class QueuedMessage {
public:
    // Opens QDIR/<queue>/.../<id>. The error is worded for the log.
    static Result<QueuedMessage> open(const queue::Layout& layout, const std::string& queue_name,
                                      const std::string& queue_id);

    const queue::Envelope& envelope() const { return envelope_; }
    // A fresh reader over the content lines.
    mailbox::LineReader lines() const;
    // True when a Delivered-To: header names `address` (case-insensitive).
    bool delivered_to(const std::string& address) const;
    const std::string& path() const { return path_; }

private:
    QueuedMessage() = default;
    Status scan_headers();

    std::string path_;
    UniqueFd fd_;
    queue::Envelope envelope_;
    std::vector<std::string> delivered_;  // lower-cased Delivered-To: values
};

}  // namespace postern::mailbox
