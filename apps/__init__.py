"""The local web app over a folder of runs (`seqmamba app`) and the per-run `report.html` (`seqmamba report`).

Routes stay thin: what a page shows comes from the files the commands write, and the work it starts
(classify, generate, score) calls the commands' own functions.
"""
