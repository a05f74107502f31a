#include "util/base/base64.h"

#include <array>
#include <cstdint>

namespace postern::base64 {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Value of each byte in the alphabet, -1 for anything else.
constexpr std::array<int8_t, 256> make_decode_table() {
    std::array<int8_t, 256> table{};
    table.fill(-1);
    for (size_t i = 0; i < kAlphabet.size(); ++i)
        table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    return table;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

std::string encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        uint32_t v = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8) |
                     uint32_t(uint8_t(data[i + 2]));
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    size_t rest = data.size() - i;
    if (rest == 0) return out;
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(data[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
    return out;
}

std::optional<std::string> decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    size_t data_chars = text.size() - pad;
    for (size_t i = 0; i < data_chars; ++i) {
        int8_t d = kDecode[static_cast<unsigned char>(text[i])];
        if (d < 0) return std::nullopt;  // includes a "=" before the end
        acc = (acc << 6) | uint32_t(d);
        if (i % 4 == 3) {
            out += char((acc >> 16) & 0xff);
            out += char((acc >> 8) & 0xff);
            out += char(acc & 0xff);
            acc = 0;
        }
    }
    if (pad == 1) {  // 3 data chars: 18 bits, 16 used, 2 pad bits must be zero
        if (acc & 0x3) return std::nullopt;
        out += char((acc >> 10) & 0xff);
        out += char((acc >> 2) & 0xff);
    } else if (pad == 2) {  // 2 data chars: 12 bits, 8 used
        if (acc & 0xf) return std::nullopt;
        out += char((acc >> 4) & 0xff);
    }
    return out;
}

}  // namespace postern::base64
