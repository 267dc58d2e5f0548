"""herald.core"""
