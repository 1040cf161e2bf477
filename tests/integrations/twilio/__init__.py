"""Tests of the Twilio integration and its simulator."""
