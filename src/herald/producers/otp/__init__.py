"""One-time passcodes (seed 003, issue 8): Twilio Verify's model over Herald's message pipeline."""

from herald.producers.otp.codes import CodeBook, codebook
from herald.producers.otp.policy import OtpPolicy, load_policy

__all__ = ["CodeBook", "OtpPolicy", "codebook", "load_policy"]
