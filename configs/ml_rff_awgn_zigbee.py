"""Maximum likelihood with AWGN augmentation (DR-RFF's second baseline), simulated ZigBee.

    disentangle train configs/ml_rff_awgn_zigbee.py --workdir runs/ml_rff_awgn_zigbee

As configs/ml_rff_zigbee.py, but every training signal first gets extra AWGN at an SNR
drawn uniformly in ``model.awgn_snr_db`` = [5, 30] dB per signal (the authors' code; the
earlier choice here was [0, 20]: ``model.awgn_snr_db=[0,20]``).
Runtime: about 1 h on 2 CPU cores, a few minutes on one modern GPU (estimated). A good
result (paper, multipath): AUC ~0.98, EER ~0.08, between ML and DR-RFF.

Quick and tiny: as configs/ml_rff_zigbee.py.
"""

from pathlib import Path

from disentangle.config import load_module


def get_config():
    shared = load_module(Path(__file__).with_name("dr_rff_zigbee.py"))
    return shared.rff_config("ml_rff_awgn")
