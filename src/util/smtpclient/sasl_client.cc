#include "util/smtpclient/sasl_client.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/base/base64.h"
#include "util/sasl/sasl_options.h"

namespace postern::smtpclient {

access::Outcome find_sasl_password(std::span<table::Table* const> tables, const SaslLookup& lookup) {
    std::vector<access::Probe> probes = lookup.sender;
    // The host and the destination are whole keys (Postfix's maps_find with no flags).
    for (const std::string* key : {&lookup.host, &lookup.dest})
        if (!key->empty()) probes.push_back({*key, false});
    return access::find(tables, probes);
}

SaslCredentials split_credentials(std::string_view value) {
    size_t colon = value.find(':');
    if (colon == std::string_view::npos) return {std::string(value), ""};
    return {std::string(value.substr(0, colon)), std::string(value.substr(colon + 1))};
}

std::string choose_sasl_mechanism(const std::vector<std::string>& offered, unsigned security_flags) {
    constexpr unsigned kNoneOfOurs = sasl::kNoActive | sasl::kNoDictionary | sasl::kForwardSecrecy |
                                     sasl::kMutualAuth;
    if (security_flags & kNoneOfOurs) return "";
    for (const auto& mech : offered)
        if (mech == "CRAM-MD5") return mech;
    if (security_flags & sasl::kNoPlaintext) return "";
    for (const auto& mech : offered)
        if (mech == "PLAIN" || mech == "LOGIN") return mech;
    return "";
}

std::optional<std::string> cram_md5_response(std::string_view user, std::string_view password,
                                             std::string_view challenge_base64) {
    auto challenge = base64::decode(challenge_base64);
    if (!challenge) return std::nullopt;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_md5(), password.data(), static_cast<int>(password.size()),
             reinterpret_cast<const unsigned char*>(challenge->data()), challenge->size(), digest, &len) ==
        nullptr)
        return std::nullopt;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string answer(user);
    answer += ' ';
    for (unsigned int i = 0; i < len; ++i) {
        answer += kHex[digest[i] >> 4];
        answer += kHex[digest[i] & 0xf];
    }
    return base64::encode(answer);
}

}  // namespace postern::smtpclient
