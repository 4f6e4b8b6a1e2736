# Same as stylegan2_ffhq.py (the name that says model, dataset and resolution).
_base_ = ['stylegan2_ffhq.py']
