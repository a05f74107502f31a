// Fuzz target: what Dovecot's auth service sends (handshake lines, then OK/CONT/FAIL
// replies) must never crash the client's parsers; a Continue step always has a decoded
// challenge, a Success step always a user name, and a refused mechanism list only names
// mechanisms the handshake announced.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_helpers.h"
#include "util/base/strings.h"
#include "util/sasl/dovecot_sasl_server.h"
#include "util/sasl/sasl_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::sasl;
    std::string_view in = postern::fuzz::as_text(data, size);
    dovecot::Handshake handshake;
    auto progress = dovecot::Handshake::Progress::More;
    while (!in.empty()) {
        size_t nl = in.find('\n');
        std::string_view line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        if (progress == dovecot::Handshake::Progress::More) {
            progress = handshake.feed(line);
            if (progress == dovecot::Handshake::Progress::Failed) FUZZ_CHECK(!handshake.error().empty());
            continue;
        }
        SaslStep step = dovecot::step_of(dovecot::parse_reply(line));
        if (step.state == SaslStep::State::Success) FUZZ_CHECK(!step.username.empty());
    }
    for (unsigned options : {0u, unsigned(kNoPlaintext | kNoAnonymous), unsigned(kMutualAuth)}) {
        std::string allowed = dovecot::allowed_mechanisms(handshake.mechanisms(), options);
        for (std::string_view name : postern::split_tokens(allowed, " ")) {
            bool announced = false;
            for (const auto& m : handshake.mechanisms()) announced |= m.name.find(name) != std::string::npos;
            FUZZ_CHECK(announced);
        }
    }
    return 0;
}
