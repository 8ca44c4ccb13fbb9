#include "psp/drop_reason.hpp"

namespace pspgw::psp {

std::string_view to_string(DropReason r) {
  switch (r) {
    case DropReason::kNone:
      return "none";
    case DropReason::kTooShort:
      return "too-short";
    case DropReason::kBadHeader:
      return "bad-header";
    case DropReason::kBadVersion:
      return "bad-version";
    case DropReason::kBadCryptOffset:
      return "bad-crypt-offset";
    case DropReason::kUnknownKey:
      return "unknown-key";
    case DropReason::kAuthFailed:
      return "auth-failed";
    case DropReason::kBadInnerPacket:
      return "bad-inner-packet";
    case DropReason::kNoRoom:
      return "no-room";
    case DropReason::kBadOuterPacket:
      return "bad-outer-packet";
    case DropReason::kUnissuedSpi:
      return "unissued-spi";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

}  // namespace pspgw::psp
