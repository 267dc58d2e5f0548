"""herald.producers"""
